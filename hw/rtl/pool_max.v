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
    wire can_emit = !out_tvalid || out_tready;
    assign in_tready = !last || can_emit;
    wire take = in_tvalid && in_tready;

    reg [PE*BITS-1:0] merged;
    integer p;
    always @* begin
        for (p = 0; p < PE; p = p + 1) begin
            if (k == 0)
                merged[p*BITS +: BITS] = in_tdata[p*BITS +: BITS];
            else if (SIGNED ? ($signed(in_tdata[p*BITS +: BITS]) > $signed(best[p*BITS +: BITS]))
                            : (in_tdata[p*BITS +: BITS] > best[p*BITS +: BITS]))
                merged[p*BITS +: BITS] = in_tdata[p*BITS +: BITS];
            else
                merged[p*BITS +: BITS] = best[p*BITS +: BITS];
        end
    end
    always @(posedge clk) begin
        if (!rst_n) begin
            k <= 0;
            out_tvalid <= 1'b0;
        end else begin
            if (out_tvalid && out_tready) out_tvalid <= 1'b0;
            if (take) begin
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
