// Synchronous stream FIFO, DEPTH entries (DEPTH >= 2), valid/ready on both sides,
// full throughput (one beat in and out per cycle), first-word fall-through.
// peak: the most entries held at once since reset (FIFO sizing by simulation); STATS = 0
// leaves it out (0), for simulations that do not read it.
// DEPTH = 2 (most edges of a sized design) is two registers, the first driving the output:
// no memory and no read multiplexer, which also makes it the cheapest case to simulate.
// DEPTH > 2: a memory read through registers behind a 2-3 slot output queue (g_mem), with
// the same beats at the same cycles.
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
    wire q_valid;                    // a beat at the output (set by the implementation)
    assign out_tvalid = q_valid;
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
            assign q_valid = count != 0;
            always @(posedge clk) begin
                if (push || pop) begin
                    if (pop && count == 2) head <= tail;
                    else if (push && (count == 0 || pop)) head <= in_tdata;
                    if (push && count == 1 && !pop) tail <= in_tdata;
                end
            end
        end else begin : g_mem
            // DEPTH > 2: a memory read through registers, in front of a small output queue
            // whose registers alone drive out_tdata (through a QCAP:1 multiplexer). The
            // read's clock-to-out then ends at a register, and on an FPGA it is the slow
            // part: an ECP5 block RAM's is 5.8 ns, so a deep FIFO reads in two stages (the
            // block RAM, then a register beside it), a FIFO of up to SHALLOW entries from
            // LUT RAM in one. Every beat takes a slot of the queue in order: a read takes
            // the next slot when it is issued and fills it when its data arrives; a beat
            // pushed while the memory holds none goes into the next slot at once. A read is
            // issued whenever a slot is free after this cycle's pop, so that the FIFO gives
            // out every beat at the cycle an ideal first-word-fall-through FIFO would
            // (tests/hw/test_rtl_stream.py compares them under random traffic).
            localparam integer SHALLOW = 128;
            localparam integer STAGES = DEPTH > SHALLOW ? 2 : 1;   // read latency
            localparam integer QCAP = STAGES + 1;                 // output queue slots
            localparam [1:0] QMAX = QCAP;     // (2-bit compares: a 32-bit one is a carry chain)
            localparam integer AW = $clog2(DEPTH);
            reg [AW-1:0] rd, wr;
            reg [CW-1:0] held;                // beats in the memory, not yet read
            reg [STAGES-1:0] fv;              // reads in flight; [STAGES-1]: arriving now
            reg [1:0] fs [0:STAGES-1];        // ... and the queue slot each one fills
            reg [WIDTH-1:0] q [0:QCAP-1];     // the queue's slots
            reg [QCAP-1:0] full;              // slots holding their beat
            reg [1:0] head, tail, used;       // oldest slot, next free slot, slots taken
            wire [WIDTH-1:0] arriving;
            assign out_tdata = q[head];
            assign q_valid = full[head];
            wire [1:0] after = used - {1'b0, pop};
            wire free = after < QMAX;
            wire read = held != 0 && free;
            wire direct = push && held == 0 && free;
            wire to_mem = push && !direct;
            if (STAGES == 1) begin : g_lutram
                (* ram_style = "distributed" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
                reg [WIDTH-1:0] ram_q;
                assign arriving = ram_q;
                always @(posedge clk) begin
                    if (push) mem[wr] <= in_tdata;   // (wr is free: no enable from the pop)
                    ram_q <= mem[rd];                  // (read or not: no enable from the pop)
                end
            end else begin : g_bram
                reg [WIDTH-1:0] mem [0:DEPTH-1];
                reg [WIDTH-1:0] ram_q, ram_q2;
                assign arriving = ram_q2;
                always @(posedge clk) begin
                    if (push) mem[wr] <= in_tdata;   // (wr is free: no enable from the pop)
                    ram_q <= mem[rd];                  // (read or not: no enable from the pop)
                    ram_q2 <= ram_q;
                end
            end
            integer s;
            always @(posedge clk) begin
                if (!rst_n) begin
                    rd <= 0;
                    wr <= 0;
                    held <= 0;
                    fv <= 0;
                    full <= 0;
                    head <= 2'd0;
                    tail <= 2'd0;
                    used <= 2'd0;
                end else begin
                    if (to_mem) wr <= (wr == DEPTH - 1) ? 0 : wr + 1;
                    if (read) rd <= (rd == DEPTH - 1) ? 0 : rd + 1;
                    if (to_mem != read) held <= to_mem ? held + 1'b1 : held - 1'b1;
                    fv <= (fv << 1) | read;
                    if (pop) head <= (head == QMAX - 1) ? 2'd0 : head + 1'b1;
                    if (read || direct) tail <= (tail == QMAX - 1) ? 2'd0 : tail + 1'b1;
                    used <= after + {1'b0, read || direct};
                    // a slot empties when its beat leaves and fills when its beat arrives
                    // (a slot popped and refilled in one cycle ends full)
                    for (s = 0; s < QCAP; s = s + 1)
                        if ((fv[STAGES-1] && fs[STAGES-1] == s) || (direct && tail == s))
                            full[s] <= 1'b1;
                        else if (pop && head == s)
                            full[s] <= 1'b0;
                end
                fs[0] <= tail;
                for (s = 1; s < STAGES; s = s + 1) fs[s] <= fs[s - 1];
                for (s = 0; s < QCAP; s = s + 1)
                    if (fv[STAGES-1] && fs[STAGES-1] == s) q[s] <= arriving;
                    else if (direct && tail == s) q[s] <= in_tdata;
            end
        end
    endgenerate
endmodule
