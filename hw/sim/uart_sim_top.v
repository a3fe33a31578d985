// Simulation top of an accelerator behind its UART shell: uart_shell + groupnet_top (the
// stitched accelerator of hw/sim/stitch.py, stitched with stats=False, or any module of
// that name and stream ports), the way a board top wires them, without the board's PLL.
// uart_harness.cpp drives uart_rx bit by bit and decodes uart_tx: the host side of the
// line. Parameters are uart_shell's (BAUD: pick CLK_HZ / BAUD >= 8 clocks per bit).
`timescale 1ns / 1ps
module uart_sim_top #(
    parameter integer CLK_HZ = 8000000,
    parameter integer BAUD = 1000000,
    parameter integer IN_WIDTH = 8,
    parameter integer OUT_WIDTH = 8,
    parameter integer IN_BEATS = 16,
    parameter integer OUT_BEATS = 16,
    parameter integer TIMEOUT_CYCLES = 4000,
    parameter integer ACC_TIMEOUT_CYCLES = 1000000,
    parameter [31:0] DESIGN_ID = 32'd0
) (
    input  wire       clk,
    input  wire       rst_n,
    input  wire       uart_rx,
    output wire       uart_tx,
    output wire [7:0] led
);
    wire acc_rst_n;
    wire [IN_WIDTH-1:0] in_tdata;
    wire in_tvalid, in_tready;
    wire [OUT_WIDTH-1:0] out_tdata;
    wire out_tvalid, out_tready;
    uart_shell #(.CLK_HZ(CLK_HZ), .BAUD(BAUD), .IN_WIDTH(IN_WIDTH), .OUT_WIDTH(OUT_WIDTH),
                 .IN_BEATS(IN_BEATS), .OUT_BEATS(OUT_BEATS), .TIMEOUT_CYCLES(TIMEOUT_CYCLES),
                 .ACC_TIMEOUT_CYCLES(ACC_TIMEOUT_CYCLES), .DESIGN_ID(DESIGN_ID)) shell (
        .clk(clk), .rst_n(rst_n), .uart_rx(uart_rx), .uart_tx(uart_tx), .led(led),
        .acc_rst_n(acc_rst_n),
        .acc_in_tdata(in_tdata), .acc_in_tvalid(in_tvalid), .acc_in_tready(in_tready),
        .acc_out_tdata(out_tdata), .acc_out_tvalid(out_tvalid), .acc_out_tready(out_tready));
    groupnet_top accel (
        .clk(clk), .rst_n(acc_rst_n),
        .in_tdata(in_tdata), .in_tvalid(in_tvalid), .in_tready(in_tready),
        .out_tdata(out_tdata), .out_tvalid(out_tvalid), .out_tready(out_tready));
endmodule
