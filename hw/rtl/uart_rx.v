// UART receiver, 8N1 (one start bit, 8 data bits LSB first, one stop bit, no parity).
// The line is asynchronous to clk: it passes a 2-flop synchroniser first. A start bit is a
// falling edge that is still low half a bit later; each data bit and the stop bit are then
// sampled in the middle of their bit period (CLKS_PER_BIT = round(CLK_HZ / BAUD) clocks;
// keep it >= 8: the rounding error accumulates over the 9.5 bit periods up to the stop
// bit, at most 0.5 / CLKS_PER_BIT of a bit per bit).
// valid: one cycle per received byte (data holds it until the next); frame_err comes with
// valid when the stop bit was low (a break or a wrong baud rate).
`timescale 1ns / 1ps
module uart_rx #(
    parameter integer CLK_HZ = 100000000,
    parameter integer BAUD   = 3000000
) (
    input  wire       clk,
    input  wire       rst_n,
    input  wire       rx,
    output reg  [7:0] data,
    output reg        valid,
    output reg        frame_err
);
    localparam integer CLKS_PER_BIT = (CLK_HZ + BAUD / 2) / BAUD;
    localparam integer CW = $clog2(CLKS_PER_BIT + 1);
    localparam [1:0] IDLE = 2'd0, START = 2'd1, DATA = 2'd2, STOP = 2'd3;

    (* async_reg = "true" *) reg rx_meta;
    (* async_reg = "true" *) reg rx_s;
    always @(posedge clk) begin
        if (!rst_n) begin
            rx_meta <= 1'b1;
            rx_s <= 1'b1;
        end else begin
            rx_meta <= rx;
            rx_s <= rx_meta;
        end
    end

    reg [1:0] state;
    reg [CW-1:0] cnt;          // clocks left to the next sampling point
    reg [2:0] bitn;
    reg [7:0] shift;
    always @(posedge clk) begin
        valid <= 1'b0;
        if (!rst_n) begin
            state <= IDLE;
            cnt <= 0;
            bitn <= 0;
            frame_err <= 1'b0;
            data <= 8'd0;
        end else begin
            case (state)
                IDLE: if (!rx_s) begin
                    state <= START;
                    cnt <= CLKS_PER_BIT / 2 - 1;        // to the middle of the start bit
                end
                START: if (cnt == 0) begin
                    if (!rx_s) begin                    // still low: a start bit
                        state <= DATA;
                        cnt <= CLKS_PER_BIT - 1;
                        bitn <= 0;
                    end else begin
                        state <= IDLE;                  // a glitch
                    end
                end else cnt <= cnt - 1'b1;
                DATA: if (cnt == 0) begin
                    shift <= {rx_s, shift[7:1]};
                    cnt <= CLKS_PER_BIT - 1;
                    bitn <= bitn + 1'b1;
                    if (bitn == 3'd7) state <= STOP;
                end else cnt <= cnt - 1'b1;
                STOP: if (cnt == 0) begin
                    // the middle of the stop bit: back to IDLE, so the next start edge,
                    // half a bit from here at the earliest, is seen
                    data <= shift;
                    valid <= 1'b1;
                    frame_err <= !rx_s;
                    state <= IDLE;
                end else cnt <= cnt - 1'b1;
            endcase
        end
    end
endmodule
