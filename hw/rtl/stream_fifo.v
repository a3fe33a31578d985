// Synchronous stream FIFO, DEPTH entries (DEPTH >= 2), valid/ready on both sides,
// full throughput (one beat in and out per cycle), first-word fall-through.
`timescale 1ns / 1ps
module stream_fifo #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [WIDTH-1:0] in_tdata,
    input  wire             in_tvalid,
    output wire             in_tready,
    output wire [WIDTH-1:0] out_tdata,
    output wire             out_tvalid,
    input  wire             out_tready,
    output wire [31:0]      level          // entries held (for FIFO sizing by simulation)
);
    localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg [AW-1:0] rd, wr;
    reg [AW:0] count;
    assign in_tready = (count != DEPTH);
    assign out_tvalid = (count != 0);
    assign out_tdata = mem[rd];
    assign level = count;
    wire push = in_tvalid && in_tready;
    wire pop = out_tvalid && out_tready;
    always @(posedge clk) begin
        if (!rst_n) begin
            rd <= 0;
            wr <= 0;
            count <= 0;
        end else begin
            if (push) begin
                mem[wr] <= in_tdata;
                wr <= (wr == DEPTH - 1) ? 0 : wr + 1;
            end
            if (pop) rd <= (rd == DEPTH - 1) ? 0 : rd + 1;
            count <= count + push - pop;
        end
    end
endmodule
