// Top-K label selection (FINN's LabelSelect; what a classifier's final TopK becomes):
// per vector of N integer scores, arriving as N/PE beats of PE lanes (lane 0 = the
// lowest label of the beat), emit the K labels with the largest scores, largest first,
// one label per beat. Equal scores keep the lower label first, as ONNX TopK (and so
// FINN's Python execution of the layer) does. The K labels of a vector are emitted from
// an output buffer while the next vector streams in: N/PE cycles per vector when K <=
// N/PE, as FINN's exp_cycles (a larger K holds the next vector's last beat until the
// labels are out).
`timescale 1ns / 1ps
module label_select #(
    parameter integer N = 10,          // labels
    parameter integer PE = 1,
    parameter integer BITS = 8,        // bits per score
    parameter integer SIGNED = 1,
    parameter integer K = 1,
    parameter integer OUT_BITS = 4     // bits per label (FINN's outputDataType)
) (
    input  wire                clk,
    input  wire                rst_n,
    input  wire [PE*BITS-1:0]  in_tdata,
    input  wire                in_tvalid,
    output wire                in_tready,
    output wire [OUT_BITS-1:0] out_tdata,
    output wire                out_tvalid,
    input  wire                out_tready
);
    localparam integer FOLD = N / PE;
    localparam integer FW = (FOLD > 1) ? $clog2(FOLD) : 1;
    localparam integer KW = (K > 1) ? $clog2(K) : 1;

    reg [FW-1:0] beat;                     // beat of the vector coming in
    reg [K*BITS-1:0] val;                  // running top K, largest first
    reg [K*OUT_BITS-1:0] lab;
    reg [K-1:0] used;                      // slot j holds a score
    reg [K*OUT_BITS-1:0] olab;             // the finished vector's labels, being emitted
    reg ov;
    reg [KW-1:0] ocnt;

    wire last_beat = (beat == FOLD - 1);
    wire out_last = ov && out_tready && (ocnt == K - 1);
    assign in_tready = !last_beat || !ov || out_last;
    wire take = in_tvalid && in_tready;
    assign out_tvalid = ov;
    assign out_tdata = olab[ocnt*OUT_BITS +: OUT_BITS];

    function automatic greater(input [BITS-1:0] a, input [BITS-1:0] b);
        greater = SIGNED ? ($signed(a) > $signed(b)) : (a > b);
    endfunction

    always @(posedge clk) begin : seq
        reg [K*BITS-1:0] v;
        reg [K*OUT_BITS-1:0] l;
        reg [K-1:0] u, ins, prev, us;
        reg [K*BITS-1:0] vs;
        reg [K*OUT_BITS-1:0] ls;
        reg [BITS-1:0] x;
        reg [OUT_BITS-1:0] idx;
        integer p, j;
        if (!rst_n) begin
            beat <= 0;
            used <= 0;
            ov <= 1'b0;
            ocnt <= 0;
        end else begin
            if (ov && out_tready) begin
                ocnt <= (ocnt == K - 1) ? 0 : ocnt + 1;
                if (ocnt == K - 1) ov <= 1'b0;
            end
            if (take) begin
                v = val;
                l = lab;
                u = (beat == 0) ? {K{1'b0}} : used;
                for (p = 0; p < PE; p = p + 1) begin
                    x = in_tdata[p*BITS +: BITS];
                    idx = beat * PE + p;
                    // slot j takes x or moves down when x beats it (strictly: ties keep
                    // the earlier, lower label ahead); the list stays sorted
                    for (j = 0; j < K; j = j + 1)
                        ins[j] = !u[j] || greater(x, v[j*BITS +: BITS]);
                    // ins << 1: slot j-1 takes x (or moved), so slot j takes slot j-1's
                    prev = ins << 1;
                    vs = v << BITS;
                    ls = l << OUT_BITS;
                    us = u << 1;
                    for (j = 0; j < K; j = j + 1) begin
                        if (ins[j] && prev[j]) begin
                            v[j*BITS +: BITS] = vs[j*BITS +: BITS];
                            l[j*OUT_BITS +: OUT_BITS] = ls[j*OUT_BITS +: OUT_BITS];
                            u[j] = us[j];
                        end else if (ins[j]) begin
                            v[j*BITS +: BITS] = x;
                            l[j*OUT_BITS +: OUT_BITS] = idx;
                            u[j] = 1'b1;
                        end
                    end
                end
                val <= v;
                lab <= l;
                used <= u;
                if (last_beat) begin
                    beat <= 0;
                    olab <= l;
                    ov <= 1'b1;
                    ocnt <= 0;
                end else begin
                    beat <= beat + 1;
                end
            end
        end
    end
endmodule
