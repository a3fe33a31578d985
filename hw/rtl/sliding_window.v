// Sliding-window generator (FINN's ConvolutionInputGenerator, 2D, no padding: FINN puts
// padding in its own layer): an H x W image of C channels, SIMD channels a beat, in;
// the windows of KH x KW pixels (dilation DH, DW; stride SH, SW) out, in FINN's order:
//   PARALLEL = 0, DEPTHWISE = 0: per window, kernel row, kernel column, channel fold (the
//                                MVAU's order); one input beat's width a beat;
//   PARALLEL = 0, DEPTHWISE = 1: per window, channel fold, kernel row, kernel column (the
//                                order of FINN's Pool and VVAU);
//   PARALLEL = 1 (SIMD = C):     a whole window a beat, kernel position major, channel
//                                minor, element 0 in the LSBs.
// Frames follow each other without a gap.
//
// The input rows go into a ring of NROWS rows (a window's rows and the next window row's,
// across a frame's end too); the writer takes a beat whenever the row it would overwrite is no longer
// needed, the reader emits a window's beats as soon as its last pixel is written. So the
// frame takes max(input beats, output beats) cycles plus a pipeline fill, at least as fast
// as FINN's own RTL generator (tests/hw/test_rtl_window.py); the reader and the writer
// share nothing but two counters (pixels written ahead of the reader, room left for the
// writer).
//
// For timing the memory is read through registers (address, memory, data) into an output
// queue whose registers alone drive out_tdata; a read is issued only when the queue will
// have a slot for it (credits), so out_tready reaches nothing but the queue's head; and
// whether the next read's pixel is written (lead > need) is compared a cycle ahead, from
// registers, for each choice the issue can make (need kept, stepped or restarted; a
// pixel in or not), into six registers the issue's last choice selects from: no compare
// chain lies before the issue logic. In parallel mode the memory is one bank per ring
// row (W pixels each), all read at one column per cycle into a shift register per
// kernel row.
`timescale 1ns / 1ps
module sliding_window #(
    parameter integer H = 8,
    parameter integer W = 8,
    parameter integer C = 1,
    parameter integer SIMD = 1,
    parameter integer BITS = 1,
    parameter integer KH = 3,
    parameter integer KW = 3,
    parameter integer SH = 1,
    parameter integer SW = 1,
    parameter integer DH = 1,
    parameter integer DW = 1,
    parameter integer DEPTHWISE = 0,
    parameter integer PARALLEL = 0,
    parameter integer LUTRAM_WORDS = 512
) (
    input  wire                    clk,
    input  wire                    rst_n,
    input  wire [SIMD*BITS-1:0]    in_tdata,
    input  wire                    in_tvalid,
    output wire                    in_tready,
    output wire [(PARALLEL ? KH * KW : 1) * SIMD * BITS - 1:0] out_tdata,
    output wire                    out_tvalid,
    input  wire                    out_tready
);
    localparam integer IW = SIMD * BITS;                  // one beat in = one memory word
    localparam integer OUT_W = PARALLEL ? KH * KW * IW : IW;
    localparam integer CF = C / SIMD;                     // beats per pixel
    localparam integer SPAN_H = (KH - 1) * DH, SPAN_W = (KW - 1) * DW;
    localparam integer OH = (H - SPAN_H - 1) / SH + 1, OW = (W - SPAN_W - 1) / SW + 1;
    localparam integer JUMP = H - (OH - 1) * SH;          // rows from the last window row
                                                          // to the next frame's first
    // ring rows: while the reader is on a window row, the writer can take all the rows of
    // the next one (within a frame: SH more; across frames: the next frame's first
    // window), and one more row, freed late (below)
    // (a power of two: a ring row is the high address bits, a row's word the low ones, and
    // no address needs a wrap-around compare)
    localparam integer AHEAD = (SH > JUMP ? SH : JUMP) + SPAN_H;
    localparam integer RB = $clog2(AHEAD + 2);            // ring row bits
    localparam integer NROWS = 1 << RB;
    localparam integer ROW_WORDS = W * CF;                // serial: words of a row
    localparam integer CB = ROW_WORDS > 1 ? $clog2(ROW_WORDS) : 1;
    localparam integer LAST_COL = (OW - 1) * SW + SPAN_W; // parallel: columns read a row
    // counters (at least 1 bit each)
    localparam integer CFW = $clog2(CF + 1), KHW = $clog2(KH + 1), KWW = $clog2(KW + 1);
    localparam integer OXW = $clog2(OW + 1), OYW = $clog2(OH + 1), WW = $clog2(W + 1);
    localparam integer LW = $clog2((NROWS + H + 1) * W + 1) + 2;  // signed pixel counts
    localparam integer STEP_PIX = SH * W, JUMP_PIX = JUMP * W;
    localparam [RB-1:0] STEP_ROWS = SH % NROWS, JUMP_ROWS = JUMP % NROWS;
    localparam integer FREED_MIN = STEP_PIX < JUMP_PIX ? STEP_PIX : JUMP_PIX;
    // the next read's pixel: its value at a window row's start, its step per window
    localparam integer NEED0 = PARALLEL ? SPAN_H * W : SPAN_H * W + SPAN_W;
    localparam integer NSTEP = PARALLEL ? 1 : SW;
    localparam integer QCAP = 5;                          // output queue: a read's 4
    localparam [2:0] QMAX = QCAP;                         // cycles and the pop's

    // ------------------------------------------------------------------ writer
    reg [CFW-1:0] wr_cf;
    reg [WW-1:0] wr_col;
    reg [RB-1:0] wr_row;                                  // ring row being written
    reg [CB-1:0] wr_word;                                 // serial: word in the row
    reg signed [LW-1:0] room;                             // pixels the writer may write
    reg room_ok;
    assign in_tready = room_ok;
    wire take = in_tvalid && room_ok;
    wire pixel_in = take && wr_cf == CF - 1;              // a pixel's last beat

    // ------------------------------------------------------------------ reader
    reg signed [LW-1:0] lead;        // pixels written beyond the first pixel of the
                                     // reader's top window row (its "base" row)
    reg signed [LW-1:0] need;        // the pixel (same origin) the next read needs
    reg [OYW-1:0] oy;
    reg [2:0] cred;                  // queue slots taken: queued + in flight
    reg cred_ok;
    wire avail;                      // lead > need, from registers (below)
    wire emit;                       // this read gives an output beat
    wire issue = avail && (cred_ok || !emit);
    wire row_end;                    // the issued read is the last of a window row
    wire need_step;                  // the issued read moves need (by NSTEP, or to NEED0
                                     // at a row's end)
    wire last_oy = oy == OH - 1;
    wire advance = issue && row_end;
    // avail without a compare before the issue logic: lead > need for each pair of next
    // values the issue can choose (need kept / stepped / restarted at NEED0 as lead drops
    // by a row step; lead + 1 with a pixel in), compared from this cycle's registers into
    // `cand`; next cycle, the choice made (`chose`, `pin`) selects one (exact: no read is
    // delayed)
    // (need + NSTEP is a register of its own, stepped as need is: no adder before a compare)
    localparam signed [LW:0] DROP_STEP = NEED0 + STEP_PIX, DROP_JUMP = NEED0 + JUMP_PIX;
    reg signed [LW:0] need_s;        // need + NSTEP
    wire signed [LW:0] lead_x = lead, need_x = need;
    wire signed [LW:0] restart = last_oy ? DROP_JUMP : DROP_STEP;
    reg [5:0] cand;                  // of last cycle's registers: lead (+1) > need kept,
                                     // stepped, restarted (2 bits each: no pixel / pixel)
    reg [1:0] chose;                 // which one the issue chose then (0 / 1 / 2)
    reg pin;                         // and whether a pixel came in
    assign avail = cand[{chose, pin}];
    // (both sums from registers, the issue logic only selects: it is the slower input)
    // (and each one adder with a selected constant)
    wire signed [LW-1:0] lead_in = lead + (pixel_in ? 1 : 0);
    wire signed [LW-1:0] lead_adv = lead + (last_oy ? (pixel_in ? 1 - JUMP_PIX : -JUMP_PIX)
                                                    : (pixel_in ? 1 - STEP_PIX : -STEP_PIX));
    // the writer learns of the freed rows 3 cycles late: the reads of a freed row still in
    // the pipeline (address, memory) have read it by then
    reg [1:0] freed [0:2];           // 0: none, 1: a window row, 2: a frame's last
    wire signed [LW-1:0] freed_pix = freed[2] == 2'd1 ? STEP_PIX :
                                     freed[2] == 2'd2 ? JUMP_PIX : 0;
    wire pop = out_tvalid && out_tready;
    wire [2:0] cred_next = cred + {2'b0, issue && emit} - {2'b0, pop};
    wire signed [LW-1:0] room_next = room - (pixel_in ? 1 : 0) + freed_pix;

    always @(posedge clk) begin
        if (!rst_n) begin
            wr_cf <= 0;
            wr_col <= 0;
            wr_row <= 0;
            wr_word <= 0;
            room <= NROWS * W;
            room_ok <= 1'b1;
            lead <= 0;
            cand <= 6'b0;
            chose <= 2'd0;
            pin <= 1'b0;
            need_s <= NEED0 + NSTEP;
            oy <= 0;
            cred <= 0;
            cred_ok <= 1'b1;
            freed[0] <= 2'd0;
            freed[1] <= 2'd0;
            freed[2] <= 2'd0;
        end else begin
            if (take) begin
                wr_cf <= (wr_cf == CF - 1) ? 0 : wr_cf + 1'b1;
                wr_word <= (wr_word == ROW_WORDS - 1) ? 0 : wr_word + 1'b1;
                if (pixel_in) begin
                    wr_col <= (wr_col == W - 1) ? 0 : wr_col + 1'b1;
                    if (wr_col == W - 1) wr_row <= wr_row + 1'b1;
                end
            end
            room <= room_next;
            // room_next > 0 without waiting for its sum (room >= 0; a freed row is >= 1)
            room_ok <= pixel_in ? (|room[LW-2:1] || (freed[2] != 2'd0 &&
                                                    (FREED_MIN > 1 || |room[LW-2:0])))
                                : (|room[LW-2:0] || freed[2] != 2'd0);
            lead <= advance ? lead_adv : lead_in;
            cand <= {lead_x >= restart, lead_x > restart, lead_x >= need_s,
                     lead_x > need_s, lead_x >= need_x, lead_x > need_x};
            chose <= advance ? 2'd2 : issue && need_step ? 2'd1 : 2'd0;
            pin <= pixel_in;
            if (advance) need_s <= NEED0 + NSTEP;
            else if (issue && need_step) need_s <= need_s + NSTEP;
            if (advance) oy <= last_oy ? 0 : oy + 1'b1;
            cred <= cred_next;
            cred_ok <= cred_next < QMAX;
            freed[0] <= !advance ? 2'd0 : last_oy ? 2'd2 : 2'd1;
            freed[1] <= freed[0];
            freed[2] <= freed[1];
        end
    end

    // ------------------------------------------------------------------ output queue
    // Every emitting read took a slot when it was issued; its data arrives 4 cycles later
    // (address, memory, data registers), in issue order, into the queue's tail.
    reg [OUT_W-1:0] q [0:QCAP-1];
    reg [2:0] head, tail;
    wire arrive;
    wire [OUT_W-1:0] arriving;
    reg [2:0] cred_q;                // beats in the queue
    assign out_tdata = q[head];
    assign out_tvalid = cred_q != 0;
    always @(posedge clk) begin
        if (!rst_n) begin
            head <= 0;
            tail <= 0;
            cred_q <= 0;
        end else begin
            if (pop) head <= (head == QMAX - 1) ? 3'd0 : head + 1'b1;
            if (arrive) tail <= (tail == QMAX - 1) ? 3'd0 : tail + 1'b1;
            cred_q <= cred_q + {2'b0, arrive} - {2'b0, pop};
        end
        if (arrive) q[tail] <= arriving;
    end

    generate
        if (PARALLEL == 0) begin : g_serial
            // ---------------------------------------------------------- read counters
            reg [CFW-1:0] cf;
            reg [KWW-1:0] kx;
            reg [KHW-1:0] ky;
            reg [OXW-1:0] ox;
            reg [RB-1:0] base;       // ring row of the top window row
            reg [RB-1:0] row;        // ring row of kernel row ky
            reg [CB-1:0] ox_off;     // (ox * SW) * CF
            reg [CB-1:0] col_off;    // (ox * SW + kx * DW) * CF
            wire l_cf = cf == CF - 1, l_kx = kx == KW - 1, l_ky = ky == KH - 1;
            wire l_ox = ox == OW - 1;
            // DEPTHWISE = 0: channel fold fastest, then kernel column, then kernel row;
            // DEPTHWISE = 1: kernel column fastest, then kernel row, then channel fold
            wire step_cf = DEPTHWISE ? (l_kx && l_ky) : 1'b1;
            wire step_kx = DEPTHWISE ? 1'b1 : l_cf;
            wire step_ky = DEPTHWISE ? l_kx : (l_cf && l_kx);
            wire window_end = l_cf && l_kx && l_ky;
            assign emit = 1'b1;
            assign row_end = window_end && l_ox;
            assign need_step = window_end;
            wire [RB-1:0] next_base = !row_end ? base : base + (last_oy ? JUMP_ROWS : STEP_ROWS);
            wire [CB-1:0] next_ox_off = !window_end ? ox_off : l_ox ? 0 : ox_off + SW * CF;
            // ---------------------------------------------------------- read pipeline
            wire [CB-1:0] word = col_off + cf;
            reg [RB+CB-1:0] rd_addr;
            reg [2:0] v;             // a read in the address, memory, data register
            reg [IW-1:0] ram_q2;
            assign arrive = v[2];
            assign arriving = ram_q2;
            wire [RB+CB-1:0] wr_addr = {wr_row, wr_word};
            always @(posedge clk) if (issue) rd_addr <= {row, word};
            // up to LUTRAM_WORDS words in LUT RAM, in banks of 64 words read side by side
            // (the bank multiplexer in the next stage); deeper ones in block RAM, whose
            // read data takes 5.8 ns on an ECP5 (Yosys does not use its output register)
            localparam integer AB = RB + CB;
            if ((1 << AB) <= LUTRAM_WORDS) begin : g_lutram
                localparam integer BB = AB > 6 ? 6 : AB;          // address bits in a bank
                localparam integer NB = 1 << (AB - BB);
                wire [NB*IW-1:0] banks_q;
                reg [AB-BB:0] which;                               // (1 bit spare)
                genvar b;
                for (b = 0; b < NB; b = b + 1) begin : g_bank
                    (* ram_style = "distributed" *) reg [IW-1:0] mem [0:(1 << BB) - 1];
                    reg [IW-1:0] q_b;
                    assign banks_q[b*IW +: IW] = q_b;
                    always @(posedge clk) begin
                        if (take && (NB == 1 || wr_addr[AB-1:BB] == b)) mem[wr_addr[BB-1:0]] <= in_tdata;
                        q_b <= mem[rd_addr[BB-1:0]];
                    end
                end
                always @(posedge clk) begin
                    which <= NB == 1 ? 0 : rd_addr >> BB;
                    ram_q2 <= banks_q[which * IW +: IW];
                end
            end else begin : g_bram
                reg [IW-1:0] mem [0:(1 << AB) - 1];
                reg [IW-1:0] ram_q;
                always @(posedge clk) begin
                    if (take) mem[wr_addr] <= in_tdata;
                    ram_q <= mem[rd_addr];
                    ram_q2 <= ram_q;
                end
            end
            always @(posedge clk) begin
                if (!rst_n) begin
                    cf <= 0;
                    kx <= 0;
                    ky <= 0;
                    ox <= 0;
                    base <= 0;
                    row <= 0;
                    ox_off <= 0;
                    col_off <= 0;
                    need <= NEED0;
                    v <= 0;
                end else begin
                    v <= {v[1:0], issue};
                    if (issue) begin
                        if (step_cf) cf <= l_cf ? 0 : cf + 1'b1;
                        if (step_kx) begin
                            kx <= l_kx ? 0 : kx + 1'b1;
                            col_off <= l_kx ? next_ox_off : col_off + DW * CF;
                        end
                        if (step_ky) begin
                            ky <= l_ky ? 0 : ky + 1'b1;
                            row <= l_ky ? next_base : row + DH % NROWS;
                        end
                        if (window_end) begin
                            ox <= l_ox ? 0 : ox + 1'b1;
                            ox_off <= next_ox_off;
                            need <= l_ox ? NEED0 : need + NSTEP;
                            base <= next_base;
                        end
                    end
                end
            end
        end else begin : g_parallel
            // ---------------------------------------------------------- read counters
            reg [WW-1:0] col, emit_col;
            reg [RB-1:0] base;       // ring row of the top window row
            wire l_col = col == LAST_COL;
            assign emit = col == emit_col;
            assign row_end = l_col;
            assign need_step = 1'b1;
            // ---------------------------------------------------------- read pipeline
            // issue -> column and kernel rows' ring rows -> the banks' data -> shifted in
            // (the window) -> the queue
            reg [WW-1:0] rd_col;
            reg [KH*RB-1:0] sel, sel2;   // ring row of each kernel row, two stages
            reg [2:0] v, e;              // a read / an emitting read in each stage
            wire [NROWS*IW-1:0] banks;   // every bank's pixel at rd_col
            wire [OUT_W-1:0] window;
            genvar b, i, j;
            for (b = 0; b < NROWS; b = b + 1) begin : g_bank
                reg [IW-1:0] mem [0:W-1];
                reg [IW-1:0] q_b;
                assign banks[b*IW +: IW] = q_b;
                always @(posedge clk) begin
                    if (take && wr_row == b) mem[wr_col] <= in_tdata;
                    q_b <= mem[rd_col];
                end
            end
            for (i = 0; i < KH; i = i + 1) begin : g_row
                reg [(SPAN_W+1)*IW-1:0] sr;      // this kernel row's pixels, newest at 0
                wire [IW-1:0] pixel = banks[sel2[i*RB +: RB]*IW +: IW];
                always @(posedge clk) begin
                    if (issue) sel[i*RB +: RB] <= base + (i * DH) % NROWS;
                    sel2[i*RB +: RB] <= sel[i*RB +: RB];
                    if (v[1]) sr <= (sr << IW) | pixel;
                end
                for (j = 0; j < KW; j = j + 1) begin : g_col
                    assign window[(i * KW + j) * IW +: IW] = sr[(SPAN_W - j * DW) * IW +: IW];
                end
            end
            assign arrive = v[2] && e[2];
            assign arriving = window;
            always @(posedge clk) begin
                if (issue) rd_col <= col;
                if (!rst_n) begin
                    col <= 0;
                    emit_col <= SPAN_W;
                    base <= 0;
                    need <= NEED0;
                    v <= 0;
                    e <= 0;
                end else begin
                    v <= {v[1:0], issue};
                    e <= {e[1:0], emit};
                    if (issue) begin
                        col <= l_col ? 0 : col + 1'b1;
                        need <= l_col ? NEED0 : need + NSTEP;
                        if (emit) emit_col <= l_col ? SPAN_W : emit_col + SW;
                        if (l_col) base <= base + (last_oy ? JUMP_ROWS : STEP_ROWS);
                    end
                end
            end
        end
    endgenerate
endmodule
