// Multi-threshold activation (FINN's Thresholding): per channel c, out = ACT_VAL +
// #{t : x >= T[c][t]}. PE lanes per beat; channel fold nf = beat index modulo C/PE
// (channel nf*PE+p in lane p). Thresholds: $readmemh(THRES_FILE), C/PE words of
// PE*N_THRES*IN_BITS bits (two's complement if IN_SIGNED), field p*N_THRES+t.
// One beat per cycle into a one-beat output register.
`timescale 1ns / 1ps
module thresholding_stream #(
    parameter integer C = 4,
    parameter integer PE = 1,
    parameter integer IN_BITS = 4,
    parameter integer IN_SIGNED = 1,
    parameter integer N_THRES = 1,
    parameter integer OUT_BITS = 1,
    parameter integer ACT_VAL = 0,
    parameter THRES_FILE = "thresholds.hex"
) (
    input  wire                   clk,
    input  wire                   rst_n,
    input  wire [PE*IN_BITS-1:0]  in_tdata,
    input  wire                   in_tvalid,
    output wire                   in_tready,
    output reg  [PE*OUT_BITS-1:0] out_tdata,
    output reg                    out_tvalid,
    input  wire                   out_tready
);
    localparam integer NF = C / PE;
    localparam integer NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam integer TB = IN_BITS + 1;     // thresholds may be one above the input range
    reg [PE*N_THRES*TB-1:0] thresholds [0:NF-1];
    initial $readmemh(THRES_FILE, thresholds);

    reg [NFW-1:0] nf;
    wire can_emit = !out_tvalid || out_tready;
    assign in_tready = can_emit;
    wire take = in_tvalid && can_emit;

    // one lane's activation: ACT_VAL + #{t : x >= T[t]} (automatic: no state)
    function automatic [OUT_BITS-1:0] activate(input [IN_BITS-1:0] v,
                                               input [N_THRES*TB-1:0] thr);
        reg signed [TB:0] x, t_val;
        reg signed [OUT_BITS+1:0] count;
        integer t;
        begin
            x = IN_SIGNED ? {{2{v[IN_BITS-1]}}, v} : {2'b00, v};
            count = ACT_VAL;
            for (t = 0; t < N_THRES; t = t + 1) begin
                t_val = {thr[t*TB+TB-1], thr[t*TB +: TB]};
                count = count + {{(OUT_BITS+1){1'b0}}, x >= t_val};
            end
            activate = count[OUT_BITS-1:0];
        end
    endfunction

    // the datapath is evaluated in the clocked block, only for a beat taken (a simulator
    // skips it in the other cycles; synthesis gives the same logic)
    integer p;
    always @(posedge clk) begin
        if (!rst_n) begin
            nf <= 0;
            out_tvalid <= 1'b0;
        end else if (take) begin
            for (p = 0; p < PE; p = p + 1)
                out_tdata[p*OUT_BITS +: OUT_BITS] <= activate(in_tdata[p*IN_BITS +: IN_BITS],
                    thresholds[nf][p*N_THRES*TB +: N_THRES*TB]);
            out_tvalid <= 1'b1;
            nf <= (nf == NF - 1) ? 0 : nf + 1;
        end else if (out_tready) begin
            out_tvalid <= 1'b0;
        end
    end
endmodule
