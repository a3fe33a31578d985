// Folded matrix-vector-activation unit (MVAU) with FINN's stream semantics.
//
// One input vector of MW elements arrives as MW/SIMD beats of SIMD elements (element 0
// in the least significant bits); for each of the MH/PE neuron folds the unit consumes
// the MW/SIMD synapse folds and emits one beat of PE outputs (element 0 = channel
// nf*PE in the LSBs). One fold per cycle: (MW/SIMD)*(MH/PE) cycles per vector, as FINN's
// exp_cycles. The input buffer has two banks: the next vector is taken in while the
// current one is folded (FINN's HLS MVAU reads its input only during the first neuron
// fold, which a narrow producer stretches); a beat arriving for the fold being computed
// is used in the same cycle.
//
// Pipeline (for the clock; the fold rate stays one per cycle): a fold fires (stage 0:
// its input beat registered) -> 1: its weight word read (the memory's enable and
// address are registers: the fold control drives no memory pins) -> 2: the word into a
// register (a block RAM's slow clock-to-out feeds nothing else) -> 3: XNORs / products
// and their sums in chunks of G elements (+-1 weights: pair sums) -> 4, 5: the fold's
// dot product, a balanced tree of adds, its lower levels then the rest -> 6: accumulate
// -> 7: threshold compares -> 8: count + ACT_VAL into a 16-entry output FIFO. An output
// leaves LATENCY = 9 cycles after its last fold fires (the FIFO's head is out_tdata).
// The stages never stall: a neuron fold's last synapse fold fires only with an output
// FIFO entry free for it (credits: outputs in flight or queued < 16), so back-pressure
// stops the folds at the front only, and no stall enable fans out to the datapath.
//
//   XNOR = 1: binary {0,1} inputs and weights, acc = popcount(xnor)   (FINN binaryXnorMode)
//   XNOR = 0: IN_BITS-bit inputs x weights: W_BITS = 1 bipolar (bit 1 = +1, 0 = -1),
//             W_BITS >= 2 signed two's-complement integers (FINN's INT2, INT4, ...)
//   N_THRES > 0: out = #{t : acc >= T[ch][t]} + ACT_VAL   (FINN MultiThreshold)
//   N_THRES = 0: out = acc                                 (FINN noActivation)
//
// Weights: $readmemh(WEIGHT_FILE), NF*SF words of PE*SIMD*W_BITS bits, word nf*SF+sf,
// field p*SIMD+s (W_BITS wide) = weight of output channel nf*PE+p for input element
// sf*SIMD+s.
// Thresholds: $readmemh(THRES_FILE), NF words of PE*N_THRES*ACC_BITS bits (two's
// complement), field (p*N_THRES+t) = threshold t of channel nf*PE+p, ascending.
// Valid/ready on both sides; stalls (input gaps, output back-pressure) never drop data.
`timescale 1ns / 1ps
module mvau_stream #(
    parameter integer MW = 36,
    parameter integer MH = 16,
    parameter integer SIMD = 9,
    parameter integer PE = 4,
    parameter integer IN_BITS = 1,
    parameter integer IN_SIGNED = 0,
    parameter integer XNOR = 1,
    parameter integer W_BITS = 1,
    parameter integer ACC_BITS = 16,
    parameter integer N_THRES = 1,
    parameter integer OUT_BITS = 1,
    parameter integer ACT_VAL = 0,
    parameter WEIGHT_FILE = "weights.hex",
    parameter THRES_FILE = "thresholds.hex",
    parameter RAM_STYLE = "auto"        // FINN's ram_style: auto, block, distributed, ultra
) (
    input  wire                     clk,
    input  wire                     rst_n,
    input  wire [SIMD*IN_BITS-1:0]  in_tdata,
    input  wire                     in_tvalid,
    output wire                     in_tready,
    output wire [PE*OUT_BITS-1:0]   out_tdata,
    output wire                     out_tvalid,
    input  wire                     out_tready
);
    localparam integer SF = MW / SIMD;
    localparam integer NF = MH / PE;
    localparam integer SFW = (SF > 1) ? $clog2(SF) : 1;
    localparam integer NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam integer TW = (N_THRES > 0) ? N_THRES : 1;
    localparam integer WW = PE * SIMD * W_BITS;     // one weight word

    localparam integer WD = NF * SF;
    localparam integer WAW = (WD > 1) ? $clog2(WD) : 1;
    // two banks of SF beats, in LUTs: read without a clock (a block RAM's read register
    // would pull the fold control into its address path)
    (* ram_style = "distributed" *) reg [SIMD*IN_BITS-1:0] ibuf [0:2*SF-1];
    localparam integer IAW = (SF > 1) ? $clog2(2 * SF) : 1;
    reg [IAW-1:0] iwr, ird;                     // wbank*SF + widx, cbank*SF + sf

    reg [SFW-1:0] sf;
    reg [NFW-1:0] nf;
    wire last_sf = (sf == SF - 1);
    wire last_nf = (nf == NF - 1);
    wire fire;

    // output FIFO and its credits (outputs fired and not yet taken)
    localparam integer OFD = 16;                // >= LATENCY + 2: full rate at SF = 1
    reg [PE*OUT_BITS-1:0] ofifo [0:OFD-1];
    reg [4:0] owr, ord;                         // pointers with a wrap bit
    reg [4:0] cred;
    reg ovalid, pop_r;                          // owr != ord, registered; pop, a cycle late
    assign out_tvalid = ovalid;
    assign out_tdata = ofifo[ord[3:0]];
    wire pop = out_tvalid && out_tready;
    wire [4:0] owr_n = owr + {4'b0, v8};
    wire [4:0] ord_n = ord + {4'b0, pop};
    // the consumer's ready reaches the read pointer and two registers only: a popped
    // entry's credit returns a cycle later (from pop_r), not through the credit adder
    wire can_emit = !cred[4];                   // cred < OFD = 16
    // pipeline valid / first / last flags of the stages
    reg v1, f1, l1, v2, f2, l2, v3, f3, l3, v4, f4, l4, v5, f5, l5, v6, f6, l6, v7, v8;

    // Weight and threshold memories, read through a register (synchronous read ports with
    // an enable: block RAM where the synthesis tool or ram_style picks it, as FINN's MVAU
    // memories; the thresholds always in logic (a ROM of LUTs), fast enough to feed the
    // compares, as FINN's). The weight port reads word waddr (= nf * SF + sf of the fold
    // in stage 1) when stage 1 holds a fold; tq holds the thresholds of the next sum to
    // be compared: the port reads the next word as its word is used (word 0 after reset).
    reg [WAW-1:0] waddr, waddr1;                // waddr1: the word after waddr, precomputed
    wire wren = v1;
    wire [WAW-1:0] wraddr = waddr;
    reg [NFW-1:0] tnf;                          // output fold of the next compare
    wire [NFW-1:0] tnf_next = (tnf == NF - 1) ? {NFW{1'b0}} : tnf + 1'b1;
    // word 0 is read in the cycle after each reset cycle (tload, a register): the reset
    // reaches one flip-flop here, not the threshold ROM's address and enable (that path,
    // from the reset register to every MVAU's tq, was a whole design's critical path);
    // kept: Yosys merges the MVAUs' identical copies into one otherwise
    reg tload;
    (* keep *) always @(posedge clk) tload <= !rst_n;
    wire [NFW-1:0] traddr = tload ? {NFW{1'b0}} : tnf_next;
    wire tren = tload || v7;
    reg [WW-1:0] wq;
    reg [PE*TW*ACC_BITS-1:0] tq;
    // A deep weight memory (more words than one block RAM holds at this word width: ECP5
    // DP16KD / 7-series RAMB18 aspect ratios) in banks of BD words, each read into a
    // register of its own in stage 2; stage 3 selects the fold's bank. A block RAM's
    // output feeds one register, not the multiplexer of its cascade (that path, 5.8 ns of
    // clock-to-out then the multiplexer, set the clock of every design folded for a
    // small ECP5). Bank b's words come from WEIGHT_FILE.<b as two hex digits>.
    localparam integer BD = (WW <= 1) ? 16384 : (WW <= 2) ? 8192 : (WW <= 4) ? 4096 :
                            (WW <= 9) ? 2048 : (WW <= 18) ? 1024 : 512;
    localparam integer NB = (RAM_STYLE == "distributed" || WD <= BD) ? 1 : (WD + BD - 1) / BD;
    localparam integer LAW = (NB > 1) ? $clog2(BD) : WAW;  // address bits within a bank
    localparam integer BAW = (NB > 1) ? WAW - LAW : 1;     // bank bits
    reg [WW-1:0] w3;                            // the weight word, stage 3 (one bank)
    wire [WW-1:0] w3s;                          // the fold's bank's word, stage 3 (banks)
    // A few words (a ROM of LUTs: Yosys maps up to about 32 words so) read in slices of
    // 64 bits, each from its own copy of the address register: one register no longer
    // fans out to every LUT of a wide ROM's decode (131.7 MHz alone for 576-bit words)
    localparam integer SLW = 64;
    localparam integer NSL = (NB == 1 && WD <= 32 && RAM_STYLE != "block" &&
                              RAM_STYLE != "ultra") ? (WW + SLW - 1) / SLW : 1;
    wire [WW-1:0] wq_all;                       // the word read (stage 2 takes it)
    always @(posedge clk) begin
        if (!rst_n) begin
            waddr <= 0;
            waddr1 <= (WD > 1) ? 1 : 0;
        end else if (v1) begin                  // no adder in front of a LUT ROM's address
            waddr <= waddr1;
            waddr1 <= (waddr1 == WD - 1) ? {WAW{1'b0}} : waddr1 + 1'b1;
        end
        if (!rst_n) tnf <= 0;
        else if (v7) tnf <= tnf_next;
    end
    generate
        if (NB > 1) begin : g_deep
            (* ram_style = "registers" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
            reg [BAW-1:0] bsel2, bsel3;            // the fold's bank, stages 2 and 3
            always @(posedge clk) begin
                if (wren) bsel2 <= wraddr[WAW-1:LAW];
                if (v2) bsel3 <= bsel2;
            end
            wire [WW-1:0] bank_w3 [0:NB-1];
            assign w3s = bank_w3[bsel3];
            genvar b;
            for (b = 0; b < NB; b = b + 1) begin : g_bank
                localparam [7:0] H1 = (b / 16 < 10) ? 48 + b / 16 : 87 + b / 16;
                localparam [7:0] H0 = (b % 16 < 10) ? 48 + b % 16 : 87 + b % 16;
                (* ram_style = "block" *) reg [WW-1:0] mem [0:BD-1];
                reg [WW-1:0] q, w3b;
                initial $readmemh({WEIGHT_FILE, ".", H1, H0}, mem);
                always @(posedge clk) if (wren) q <= mem[wraddr[LAW-1:0]];
                always @(posedge clk) if (v2) w3b <= q;
                assign bank_w3[b] = w3b;
            end
        end else if (NSL > 1) begin : g_rom
            (* ram_style = "registers" *) reg [WW-1:0] weights [0:WD-1];   // a LUT ROM
            (* ram_style = "registers" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
            genvar k;
            for (k = 0; k < NSL; k = k + 1) begin : g_slice
                localparam integer LO = k * SLW;
                localparam integer W = (WW - LO < SLW) ? WW - LO : SLW;
                reg [WAW-1:0] a;                    // this slice's address (kept: not
                reg [W-1:0] q;                      // merged with the other copies)
                (* keep *) always @(posedge clk) begin
                    if (!rst_n) a <= 0;
                    else if (v1) a <= waddr1;
                end
                always @(posedge clk) if (wren) q <= weights[a][LO +: W];
                assign wq_all[LO +: W] = q;
            end
        end else if (RAM_STYLE == "distributed") begin : g_lutram
            (* ram_style = "distributed" *) reg [WW-1:0] weights [0:WD-1];
            (* ram_style = "registers" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (wren) wq <= weights[wraddr];
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
        end else if (RAM_STYLE == "block" || RAM_STYLE == "ultra") begin : g_bram
            (* ram_style = "block" *) reg [WW-1:0] weights [0:WD-1];
            (* ram_style = "registers" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (wren) wq <= weights[wraddr];
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
        end else begin : g_auto
            reg [WW-1:0] weights [0:WD-1];
            (* ram_style = "registers" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (wren) wq <= weights[wraddr];
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
        end
        if (NB == 1) begin : g_word
            assign w3s = {WW{1'b0}};           // (unused: stage 3 reads w3)
        end
        if (NSL == 1) begin : g_one
            assign wq_all = wq;
        end
    endgenerate

    // writer: fills bank wbank at widx; a completed bank is full until folded
    reg wbank, cbank;
    reg [SFW:0] widx;
    reg [1:0] full;
    assign in_tready = !full[wbank];
    wire take = in_tvalid && in_tready;
    wire same = (wbank == cbank) && !full[cbank];      // compute reads the bank being filled
    // lt: sf < widx, registered (from the counters' next values): no compare in front of
    // fire. While the bank being filled is folded, sf <= widx, so !lt is sf == widx.
    reg lt;
    wire stored = full[cbank] || (same && lt);
    localparam [IAW-1:0] BANK1 = SF;                   // first entry of bank 1
    wire bypass = same && !lt && take;
    wire [SFW-1:0] sf_n = !fire ? sf : last_sf ? {SFW{1'b0}} : sf + 1'b1;
    wire [SFW:0] widx_n = !take ? widx : (widx == SF - 1) ? {(SFW+1){1'b0}} : widx + 1'b1;
    always @(posedge clk) lt <= rst_n && ({1'b0, sf_n} < widx_n);
    assign fire = (stored || bypass) && (!last_sf || can_emit);

    // Datapath functions (combinational logic; the datapath block below calls each stage's
    // only when the stage holds a fold, so a simulator skips them in the other cycles).
    // (XNOR: a popcount of 4 XNORs is two LUT levels; of 8, ABC made up to 7)
    localparam integer GM = (XNOR != 0) ? 4 : 3;            // elements per chunk (at most)
    localparam integer G = (SIMD < GM) ? SIMD : GM;
    localparam integer NCH = (SIMD + G - 1) / G;            // chunks per PE
    localparam integer PB = (XNOR != 0) ? 1 : IN_BITS + W_BITS;   // one product, signed
    localparam integer CB = (XNOR != 0) ? $clog2(G + 1) : ACC_BITS;  // one term's width
    // +-1 weights: a chunk's (at most 3) products and its -1 count as two pair sums, each
    // as wide as its sum (PB + 1 bits): two terms a chunk for the dot product's tree
    localparam integer TREE = (XNOR == 0 && W_BITS == 1 && G <= 3 && ACC_BITS >= PB + 2);
    localparam integer NT = TREE ? 2 * NCH : NCH;           // terms per PE, stage 3 -> 4

    // signed >= as an unsigned compare with the sign bits flipped (same result)
    localparam [ACC_BITS-1:0] SIGN = {1'b1, {(ACC_BITS-1){1'b0}}};
    function automatic ge_signed(input [ACC_BITS-1:0] a, input [ACC_BITS-1:0] b);
        ge_signed = (a ^ SIGN) >= (b ^ SIGN);
    endfunction

    // stage 3: term n of one PE's dot product, from its products summed in chunks of G
    // elements (XNOR: a chunk's popcount; else the products e * w, a -1 weight as ~e + 1,
    // each exact in PB bits, summed modulo 2^ACC_BITS; +-1 weights: the chunk's two pair
    // sums, n even its first two products, n odd its third and its -1 count)
    function automatic [CB-1:0] term(input [SIMD*IN_BITS-1:0] xv,
                                     input [SIMD*W_BITS-1:0] wv, input integer n);
        integer j, i, k;
        reg [NCH*G-1:0] bits;                               // XNOR bits, zero-padded
        reg [ACC_BITS-1:0] s;
        reg signed [PB:0] e, w, t;
        reg signed [ACC_BITS-1:0] te;                       // t sign-extended from PB bits
        reg [3*PB-1:0] tv;                                  // a chunk's terms (+-1 weights)
        reg signed [PB:0] u;                                // one of their pair sums
        reg signed [ACC_BITS-1:0] ue;                       // ... sign-extended
        reg [1:0] neg;                                      // its -1 weights
        begin
            j = TREE ? n / 2 : n;
            if (XNOR != 0) begin
                bits = 0;
                bits[SIMD-1:0] = ~(xv[SIMD-1:0] ^ wv[SIMD-1:0]);
                term = $countones(bits[j*G +: G]);
            end else begin
                s = 0;
                tv = 0;
                neg = 0;
                for (k = 0; k < G; k = k + 1) begin
                    i = j * G + k;
                    if (i < SIMD) begin
                        e = {{(PB + 1 - IN_BITS){IN_SIGNED != 0 && xv[i*IN_BITS+IN_BITS-1]}},
                             xv[i*IN_BITS +: IN_BITS]};
                        if (W_BITS == 1) begin
                            // +-e as e or ~e, the +1 of each ~e counted apart
                            t = wv[i] ? e : ~e;
                            te = $signed(t[PB-1:0]);
                            tv[k*PB +: PB] = t[PB-1:0];
                            neg = neg + {1'b0, !wv[i]};
                            if (!TREE) s = s + te + {{(ACC_BITS - 1){1'b0}}, !wv[i]};
                        end else begin
                            w = {{(PB + 1 - W_BITS){wv[i*W_BITS+W_BITS-1]}},
                                 wv[i*W_BITS +: W_BITS]};
                            t = e * w;
                            te = $signed(t[PB-1:0]);
                            s = s + te;
                        end
                    end
                end
                // (G <= 3) two adds side by side, each as wide as its sum (PB + 1 bits):
                // one short carry chain deep; the dot product adds them
                if (TREE) begin
                    if (n % 2 == 0) u = $signed(tv[0 +: PB]) + $signed(tv[PB +: PB]);
                    else u = $signed(tv[2*PB +: PB]) + $signed({1'b0, neg});
                    ue = u;
                    term = ue;
                end else begin
                    term = s[CB-1:0];
                end
            end
        end
    endfunction

    // stages 4, 5: one PE's dot product of the fold, the sum of its NT terms (modulo
    // 2^ACC_BITS), as a balanced tree of adds (at level l, sum i is that of sums 2i and
    // 2i+1 of level l-1; an odd last one passes through): stage 4 adds its first LO levels
    // into N4 sums, stage 5 the rest; at most ceil(NLV / 2) carry chains a stage (in the
    // datapath block below; loop bounds are constants, the levels' sums constants of the
    // loop variables: both tools unroll them)
    localparam integer NLV = (NT > 1) ? $clog2(NT) : 0;
    localparam integer LO = (NLV + 1) / 2;
    localparam integer N4 = (NT + (1 << LO) - 1) >> LO;
    localparam integer NLV5 = (N4 > 1) ? $clog2(N4) : 0;

    // stage 7: the threshold compares of one completed sum, counted per group of 4
    localparam integer NG = (TW + 3) / 4;
    function automatic [NG*3-1:0] compares(input [ACC_BITS-1:0] v,
                                           input [TW*ACC_BITS-1:0] thr);
        integer i;
        reg [NG*4-1:0] ge;
        begin
            ge = 0;
            for (i = 0; i < TW; i = i + 1)
                ge[i] = ge_signed(v, thr[i*ACC_BITS +: ACC_BITS]);
            for (i = 0; i < NG; i = i + 1)
                compares[i*3 +: 3] = $countones(ge[i*4 +: 4]);
        end
    endfunction

    // stage 8: ACT_VAL + #{t : sum >= T[t]}, the sum of the group counts
    function automatic [OUT_BITS-1:0] activate(input [NG*3-1:0] counts);
        reg [31:0] count;
        integer g;
        begin
            count = ACT_VAL;
            for (g = 0; g < NG; g = g + 1)
                count = count + counts[g*3 +: 3];
            activate = count[OUT_BITS-1:0];
        end
    endfunction

    // the raw sum (N_THRES = 0), sign-extended when the output type is wider than the
    // accumulator (the accumulator always has a sign bit, see hw/rtl/mvau.py acc_bits)
    function automatic [OUT_BITS-1:0] raw(input [ACC_BITS-1:0] v);
        reg [OUT_BITS+ACC_BITS-1:0] wide;
        begin
            wide = {{OUT_BITS{v[ACC_BITS-1]}}, v};
            raw = wide[OUT_BITS-1:0];
        end
    endfunction

    // Control: input banks, fold counters, pipeline flags, output FIFO pointers, credits
    always @(posedge clk) begin
        if (!rst_n) begin
            sf <= 0;
            nf <= 0;
            wbank <= 1'b0;
            cbank <= 1'b0;
            widx <= 0;
            full <= 2'b00;
            iwr <= 0;
            ird <= 0;
            {v1, v2, v3, v4, v5, v6, v7, v8} <= 8'b0;
            owr <= 0;
            ord <= 0;
            cred <= 0;
            ovalid <= 1'b0;
            pop_r <= 1'b0;
        end else begin
            v1 <= fire;
            f1 <= (sf == 0);
            l1 <= last_sf;
            {v2, f2, l2} <= {v1, f1, l1};
            {v3, f3, l3} <= {v2, f2, l2};
            {v4, f4, l4} <= {v3, f3, l3};
            {v5, f5, l5} <= {v4, f4, l4};
            {v6, f6, l6} <= {v5, f5, l5};
            v7 <= v6 && l6;
            v8 <= v7;
            owr <= owr_n;
            ord <= ord_n;
            ovalid <= (owr_n != ord_n);
            pop_r <= pop;
            cred <= cred + {4'b0, fire && last_sf} - {4'b0, pop_r};
            if (take) begin
                ibuf[iwr] <= in_tdata;
                if (widx == SF - 1) begin
                    widx <= 0;
                    iwr <= wbank ? {IAW{1'b0}} : BANK1;
                    full[wbank] <= 1'b1;
                    wbank <= ~wbank;
                end else begin
                    widx <= widx + 1;
                    iwr <= iwr + 1'b1;
                end
            end
            if (fire) begin
                if (last_sf) begin
                    sf <= 0;
                    if (last_nf) begin
                        nf <= 0;
                        full[cbank] <= 1'b0;          // after the writer's set: wins
                        cbank <= ~cbank;
                        ird <= cbank ? {IAW{1'b0}} : BANK1;
                    end else begin
                        nf <= nf + 1;
                        ird <= cbank ? BANK1 : {IAW{1'b0}};
                    end
                end else begin
                    sf <= sf + 1;
                    ird <= ird + 1'b1;
                end
            end
        end
    end

    // Datapath: stage registers, each written only when its stage takes a fold (a
    // simulator skips the others), read only here: blocking assignments, later stages
    // first, so each stage reads its predecessor's value from the previous cycle
    // (registers all the same; a simulator skips delayed writes). The per-PE values are
    // arrays of one value each (a simulator keeps each in a machine word; packed into
    // one vector they were hundreds of bits wide, every field a shift and mask); Yosys
    // makes them registers (mem2reg), as their packed form.
    reg [SIMD*IN_BITS-1:0] x1, x2, x3;          // the input beat, stages 1, 2, 3
    (* mem2reg *) reg [CB-1:0] chunk4 [0:PE*NT-1];          // stage 3 -> 4
    (* mem2reg *) reg [ACC_BITS-1:0] part5 [0:PE*N4-1];     // stage 4 -> 5
    (* mem2reg *) reg [ACC_BITS-1:0] dot6 [0:PE-1];         // stage 5 -> 6
    (* mem2reg *) reg [ACC_BITS-1:0] acc [0:PE-1];          // stage 6: the partial sums
    (* mem2reg *) reg [NG*3-1:0] ge8 [0:PE-1];              // stage 7 -> 8 (N_THRES > 0)
    (* mem2reg *) reg [OUT_BITS-1:0] raw8 [0:PE-1];         // stage 7 -> 8 (N_THRES = 0)
    (* mem2reg *) reg [ACC_BITS-1:0] lo [0:NT-1];           // stage 4's tree (a temporary)
    (* mem2reg *) reg [ACC_BITS-1:0] hi [0:N4-1];           // stage 5's tree (a temporary)
    always @(posedge clk) begin : datapath
        integer p, j, l;
        reg [PE*OUT_BITS-1:0] word;
        reg [NCH*G-1:0] bits;                   // one PE's XNORs, zero-padded
        reg [WW-1:0] w;                         // stage 3's weight word
        /* verilator lint_off BLKSEQ */
        if (v8) begin
            for (p = 0; p < PE; p = p + 1)
                word[p*OUT_BITS +: OUT_BITS] = (N_THRES == 0) ? raw8[p] : activate(ge8[p]);
            ofifo[owr[3:0]] <= word;
        end
        if (v7) begin
            for (p = 0; p < PE; p = p + 1) begin
                if (N_THRES == 0) raw8[p] = raw(acc[p]);
                else ge8[p] = compares(acc[p], tq[p*TW*ACC_BITS +: TW*ACC_BITS]);
            end
        end
        if (v6) begin
            for (p = 0; p < PE; p = p + 1)
                acc[p] = dot6[p] + (f6 ? {ACC_BITS{1'b0}} : acc[p]);
        end
        if (v5) begin
            for (p = 0; p < PE; p = p + 1) begin
                for (j = 0; j < N4; j = j + 1)
                    hi[j] = part5[p*N4+j];
                for (l = 0; l < NLV5; l = l + 1)
                    for (j = 0; j < (N4 + 1) / 2; j = j + 1)
                        if (2 * j + 1 < ((N4 + (1 << l) - 1) >> l))
                            hi[j] = hi[2*j] + hi[2*j+1];
                        else if (2 * j < ((N4 + (1 << l) - 1) >> l))
                            hi[j] = hi[2*j];
                dot6[p] = hi[0];
            end
        end
        if (v4) begin
            for (p = 0; p < PE; p = p + 1) begin
                for (j = 0; j < NT; j = j + 1)   // XNOR: popcounts, zero-extended
                    lo[j] = {{ACC_BITS{1'b0}}, chunk4[p*NT+j]};
                for (l = 0; l < LO; l = l + 1)
                    for (j = 0; j < (NT + 1) / 2; j = j + 1)
                        if (2 * j + 1 < ((NT + (1 << l) - 1) >> l))
                            lo[j] = lo[2*j] + lo[2*j+1];
                        else if (2 * j < ((NT + (1 << l) - 1) >> l))
                            lo[j] = lo[2*j];
                for (j = 0; j < N4; j = j + 1)
                    part5[p*N4+j] = lo[j];
            end
        end
        if (v3) begin
            w = (NB > 1) ? w3s : w3;
            for (p = 0; p < PE; p = p + 1)
                if (XNOR != 0) begin            // the XNORs once, their chunks' popcounts
                    bits = 0;
                    bits[SIMD-1:0] = ~(x3[SIMD-1:0] ^ w[p*SIMD +: SIMD]);
                    for (j = 0; j < NT; j = j + 1)
                        chunk4[p*NT+j] = $countones(bits[j*G +: G]);
                end else begin
                    for (j = 0; j < NT; j = j + 1)
                        chunk4[p*NT+j] = term(x3, w[p*SIMD*W_BITS +: SIMD*W_BITS], j);
                end
        end
        if (v2) begin
            x3 = x2;
            if (NB == 1) w3 = wq_all;
        end
        if (v1) x2 = x1;
        if (rst_n && fire) x1 = stored ? ibuf[ird] : in_tdata;
        /* verilator lint_on BLKSEQ */
    end
endmodule
