// Max pool over the windows of a depthwise sliding-window generator (FINN's Pool with
// Function=MaxPool): per output pixel and channel fold, K2 consecutive beats of PE lanes
// (FINN's depthwise order: channel fold outer, kernel position inner) -> one beat of the
// lane-wise maxima. Cycles = input beats, as FINN's exp_cycles.
`timescale 1ns / 1ps
module pool_max #(
    parameter integer PE = 1,
    parameter integer BITS = 1,
    parameter integer SIGNED = 0,
    parameter integer K2 = 4
) (
    input  wire               clk,
    input  wire               rst_n,
    input  wire [PE*BITS-1:0] in_tdata,
    input  wire               in_tvalid,
    output wire               in_tready,
    output reg  [PE*BITS-1:0] out_tdata,
    output reg                out_tvalid,
    input  wire               out_tready
);
    localparam integer KW = (K2 > 1) ? $clog2(K2) : 1;
    reg [KW-1:0] k;
    reg [PE*BITS-1:0] best;
    wire last = (k == K2 - 1);
    // a window's last beat waits while the output register is full: in_tready depends on
    // registers only (K2 >= 2: at full rate the output is taken before the next last beat)
    assign in_tready = (K2 > 1) ? !(last && out_tvalid) : (!out_tvalid || out_tready);
    wire take = in_tvalid && in_tready;

    // lane-wise max of the running maxima and this beat (automatic: no state)
    function automatic [PE*BITS-1:0] merge(input [PE*BITS-1:0] a, input [PE*BITS-1:0] b,
                                           input first);
        integer p;
        for (p = 0; p < PE; p = p + 1) begin
            if (first || (SIGNED ? ($signed(a[p*BITS +: BITS]) > $signed(b[p*BITS +: BITS]))
                                 : (a[p*BITS +: BITS] > b[p*BITS +: BITS])))
                merge[p*BITS +: BITS] = a[p*BITS +: BITS];
            else
                merge[p*BITS +: BITS] = b[p*BITS +: BITS];
        end
    endfunction

    // the datapath is evaluated in the clocked block, only for a beat taken (a simulator
    // skips it in the other cycles; synthesis gives the same logic)
    always @(posedge clk) begin : seq
        reg [PE*BITS-1:0] merged;
        if (!rst_n) begin
            k <= 0;
            out_tvalid <= 1'b0;
        end else begin
            if (out_tvalid && out_tready) out_tvalid <= 1'b0;
            if (take) begin
                merged = merge(in_tdata, best, k == 0);
                best <= merged;
                if (last) begin
                    k <= 0;
                    out_tdata <= merged;
                    out_tvalid <= 1'b1;
                end else begin
                    k <= k + 1;
                end
            end
        end
    end
endmodule
