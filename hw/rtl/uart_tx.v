// UART transmitter, 8N1: a byte (data, valid) is taken when ready is high, then sent as a
// start bit (0), 8 data bits LSB first and a stop bit (1), CLKS_PER_BIT = round(CLK_HZ /
// BAUD) clocks each; ready rises again after the stop bit. tx idles high.
`timescale 1ns / 1ps
module uart_tx #(
    parameter integer CLK_HZ = 100000000,
    parameter integer BAUD   = 3000000
) (
    input  wire       clk,
    input  wire       rst_n,
    input  wire [7:0] data,
    input  wire       valid,
    output wire       ready,
    output reg        tx
);
    localparam integer CLKS_PER_BIT = (CLK_HZ + BAUD / 2) / BAUD;
    localparam integer CW = $clog2(CLKS_PER_BIT + 1);

    reg [8:0] shift;           // data bits then the stop bit, shifted out LSB first
    reg [3:0] left;            // bit periods left, the current one included
    reg [CW-1:0] cnt;
    assign ready = (left == 4'd0);
    always @(posedge clk) begin
        if (!rst_n) begin
            tx <= 1'b1;
            left <= 4'd0;
            cnt <= 0;
            shift <= 9'h1ff;
        end else if (left == 4'd0) begin
            if (valid) begin
                tx <= 1'b0;                             // start bit
                shift <= {1'b1, data};
                left <= 4'd10;
                cnt <= CLKS_PER_BIT - 1;
            end
        end else if (cnt == 0) begin
            tx <= shift[0];                             // after the stop bit: stays 1
            shift <= {1'b1, shift[8:1]};
            left <= left - 1'b1;
            cnt <= CLKS_PER_BIT - 1;
        end else begin
            cnt <= cnt - 1'b1;
        end
    end
endmodule
