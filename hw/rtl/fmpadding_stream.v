// Feature-map padding (FINN's FMPadding): an H x W x C image streamed in NHWC order,
// SIMD channels per beat, comes out as (PT+H+PB) x (PL+W+PR) x C with zero beats in the
// border (0 is -1 for binary streams: FINN's padding of bipolar data). One output beat
// per cycle: cycles = output beats, as FINN's exp_cycles.
`timescale 1ns / 1ps
module fmpadding_stream #(
    parameter integer H = 28,
    parameter integer W = 28,
    parameter integer C = 1,
    parameter integer SIMD = 1,
    parameter integer BITS = 8,
    parameter integer PT = 2,
    parameter integer PB = 2,
    parameter integer PL = 2,
    parameter integer PR = 2
) (
    input  wire                 clk,
    input  wire                 rst_n,
    input  wire [SIMD*BITS-1:0] in_tdata,
    input  wire                 in_tvalid,
    output wire                 in_tready,
    output reg  [SIMD*BITS-1:0] out_tdata,
    output reg                  out_tvalid,
    input  wire                 out_tready
);
    localparam integer OH = PT + H + PB;
    localparam integer OW = PL + W + PR;
    localparam integer CF = C / SIMD;
    // counters as wide as their ranges (a 32-bit compare is a long carry chain)
    localparam integer YW = (OH > 1) ? $clog2(OH) : 1;
    localparam integer XW = (OW > 1) ? $clog2(OW) : 1;
    localparam integer CW = (CF > 1) ? $clog2(CF) : 1;
    reg [YW-1:0] y;
    reg [XW-1:0] x;
    reg [CW-1:0] cf;
    wire in_image = (y >= PT) && (y < PT + H) && (x >= PL) && (x < PL + W);
    wire can_emit = !out_tvalid || out_tready;
    assign in_tready = in_image && can_emit;
    wire step = can_emit && (!in_image || in_tvalid);
    always @(posedge clk) begin
        if (!rst_n) begin
            y <= 0;
            x <= 0;
            cf <= 0;
            out_tvalid <= 1'b0;
        end else begin
            if (step) begin
                out_tdata <= in_image ? in_tdata : {SIMD*BITS{1'b0}};
                out_tvalid <= 1'b1;
                if (cf == CF - 1) begin
                    cf <= 0;
                    if (x == OW - 1) begin
                        x <= 0;
                        y <= (y == OH - 1) ? 0 : y + 1;
                    end else begin
                        x <= x + 1;
                    end
                end else begin
                    cf <= cf + 1;
                end
            end else if (out_tready) begin
                out_tvalid <= 1'b0;
            end
        end
    end
endmodule
