// Synchronous stream FIFO, DEPTH entries (DEPTH >= 2), valid/ready on both sides,
// full throughput (one beat in and out per cycle), first-word fall-through.
// peak: the most entries held at once since reset (FIFO sizing by simulation); STATS = 0
// leaves it out (0), for simulations that do not read it.
// DEPTH = 2 (most edges of a sized design) is two registers, the first driving the output:
// no memory and no read multiplexer, which also makes it the cheapest case to simulate.
`timescale 1ns / 1ps
module stream_fifo #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2,
    parameter integer STATS = 1
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [WIDTH-1:0] in_tdata,
    input  wire             in_tvalid,
    output wire             in_tready,
    output wire [WIDTH-1:0] out_tdata,
    output wire             out_tvalid,
    input  wire             out_tready,
    output reg  [31:0]      peak
);
    localparam integer CW = $clog2(DEPTH + 1);
    reg [CW-1:0] count;
    assign in_tready = (count != DEPTH);
    assign out_tvalid = (count != 0);
    wire push = in_tvalid && in_tready;
    wire pop = out_tvalid && out_tready;
    // the state changes only in a cycle with a beat in or out (simulated only then)
    always @(posedge clk) begin
        if (!rst_n) begin
            count <= 0;
            peak <= 0;
        end else if (push != pop) begin
            count <= push ? count + 1'b1 : count - 1'b1;
            if (STATS != 0 && push && count + 1 > peak) peak <= count + 1;
        end
    end

    generate
        if (DEPTH == 2) begin : g_regs
            reg [WIDTH-1:0] head, tail;
            assign out_tdata = head;
            always @(posedge clk) begin
                if (push || pop) begin
                    if (pop && count == 2) head <= tail;
                    else if (push && (count == 0 || pop)) head <= in_tdata;
                    if (push && count == 1 && !pop) tail <= in_tdata;
                end
            end
        end else begin : g_ram
            localparam integer AW = $clog2(DEPTH);
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            reg [AW-1:0] rd, wr;
            assign out_tdata = mem[rd];
            always @(posedge clk) begin
                if (!rst_n) begin
                    rd <= 0;
                    wr <= 0;
                end else begin
                    if (push) begin
                        mem[wr] <= in_tdata;
                        wr <= (wr == DEPTH - 1) ? 0 : wr + 1;
                    end
                    if (pop) rd <= (rd == DEPTH - 1) ? 0 : rd + 1;
                end
            end
        end
    endgenerate
endmodule
