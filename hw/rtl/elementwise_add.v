// Integer join of two streams (FINN's ElementwiseAdd): PE lanes per beat, signed (or
// unsigned) A_BITS/B_BITS inputs, OUT_BITS two's complement result. A beat is taken from
// both inputs at once into a two-beat output queue whose fill is a register: the inputs'
// ready depends on the other input's valid and that register only, never on out_tready
// (no combinational path through the join from the consumer to both producers). One
// beat per cycle.
`timescale 1ns / 1ps
module elementwise_add #(
    parameter integer PE = 1,
    parameter integer A_BITS = 2,
    parameter integer B_BITS = 2,
    parameter integer A_SIGNED = 1,
    parameter integer B_SIGNED = 1,
    parameter integer OUT_BITS = 3
) (
    input  wire                   clk,
    input  wire                   rst_n,
    input  wire [PE*A_BITS-1:0]   a_tdata,
    input  wire                   a_tvalid,
    output wire                   a_tready,
    input  wire [PE*B_BITS-1:0]   b_tdata,
    input  wire                   b_tvalid,
    output wire                   b_tready,
    output reg  [PE*OUT_BITS-1:0] out_tdata,     // the queue's head
    output reg                    out_tvalid,
    input  wire                   out_tready
);
    reg [PE*OUT_BITS-1:0] second;               // the queue's second beat
    reg full;                                   // two beats queued
    wire take = a_tvalid && b_tvalid && !full;
    assign a_tready = b_tvalid && !full;
    assign b_tready = a_tvalid && !full;
    wire pop = out_tvalid && out_tready;

    // one lane's sum, both operands extended to OUT_BITS+1 bits (automatic: no state)
    function automatic [OUT_BITS-1:0] lane_sum(input [A_BITS-1:0] av, input [B_BITS-1:0] bv);
        reg signed [OUT_BITS:0] a, b;
        begin
            a = A_SIGNED ? {{(OUT_BITS + 1 - A_BITS){av[A_BITS-1]}}, av}
                         : {{(OUT_BITS + 1 - A_BITS){1'b0}}, av};
            b = B_SIGNED ? {{(OUT_BITS + 1 - B_BITS){bv[B_BITS-1]}}, bv}
                         : {{(OUT_BITS + 1 - B_BITS){1'b0}}, bv};
            lane_sum = a + b;
        end
    endfunction

    // the sums are evaluated in the clocked block, only for a pair taken (a simulator
    // skips them in the other cycles; synthesis gives the same logic)
    integer p;
    reg [PE*OUT_BITS-1:0] sum;                  // this block's own (blocking)
    always @(posedge clk) begin
        /* verilator lint_off BLKSEQ */
        if (!rst_n) begin
            out_tvalid <= 1'b0;
            full <= 1'b0;
        end else begin
            if (take)
                for (p = 0; p < PE; p = p + 1)
                    sum[p*OUT_BITS +: OUT_BITS] = lane_sum(a_tdata[p*A_BITS +: A_BITS],
                                                           b_tdata[p*B_BITS +: B_BITS]);
            // head: the second beat moves up on a pop, else a new sum lands in the first
            // free place (take implies !full)
            if (full ? pop : (take && (!out_tvalid || pop)))
                out_tdata <= full ? second : sum;
            if (take && out_tvalid && !pop)
                second <= sum;
            out_tvalid <= take || full || (out_tvalid && !pop);
            full <= out_tvalid && (full ? !pop || take : take && !pop);
        end
        /* verilator lint_on BLKSEQ */
    end
endmodule
