// Folded matrix-vector-activation unit (MVAU) with FINN's stream semantics.
//
// One input vector of MW elements arrives as MW/SIMD beats of SIMD elements (element 0
// in the least significant bits); for each of the MH/PE neuron folds the unit consumes
// the MW/SIMD synapse folds and emits one beat of PE outputs (element 0 = channel
// nf*PE in the LSBs). One fold per cycle: (MW/SIMD)*(MH/PE) cycles per vector, as FINN's
// exp_cycles. The input buffer has two banks: the next vector is taken in while the
// current one is folded (FINN's HLS MVAU reads its input only during the first neuron
// fold, which a narrow producer stretches); a beat arriving for the fold being computed
// is used in the same cycle, so the latency is that of the single-buffered unit.
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
    output reg  [PE*OUT_BITS-1:0]   out_tdata,
    output reg                      out_tvalid,
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
    reg [SIMD*IN_BITS-1:0] ibuf [0:2*SF-1];     // two banks of SF beats

    reg [SFW-1:0] sf;
    reg [NFW-1:0] nf;
    wire last_sf = (sf == SF - 1);
    wire last_nf = (nf == NF - 1);
    wire can_emit = !out_tvalid || out_tready;
    wire fire;

    // Weight and threshold memories, read through a register (synchronous read ports with
    // an enable: block RAM where the synthesis tool or ram_style picks it, as FINN's MVAU
    // memories). wq / tq always hold the words of the fold about to fire: the port reads
    // the next fold's word as a fold fires (and word 0 in reset), so no cycle is added.
    reg [WAW-1:0] waddr;                        // nf * SF + sf
    wire [WAW-1:0] waddr_next = (waddr == WD - 1) ? {WAW{1'b0}} : waddr + 1'b1;
    wire [WAW-1:0] wraddr = rst_n ? waddr_next : {WAW{1'b0}};
    wire wren = !rst_n || fire;
    wire [NFW-1:0] nf_next = last_nf ? {NFW{1'b0}} : nf + 1'b1;
    wire [NFW-1:0] traddr = rst_n ? nf_next : {NFW{1'b0}};
    wire tren = !rst_n || (fire && last_sf);
    reg [WW-1:0] wq;
    reg [PE*TW*ACC_BITS-1:0] tq;
    always @(posedge clk) begin
        if (!rst_n) waddr <= 0;
        else if (fire) waddr <= waddr_next;
    end
    generate
        if (RAM_STYLE == "distributed") begin : g_lutram
            (* ram_style = "distributed" *) reg [WW-1:0] weights [0:WD-1];
            (* ram_style = "distributed" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (wren) wq <= weights[wraddr];
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
        end else if (RAM_STYLE == "block" || RAM_STYLE == "ultra") begin : g_bram
            (* ram_style = "block" *) reg [WW-1:0] weights [0:WD-1];
            (* ram_style = "block" *) reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (wren) wq <= weights[wraddr];
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
        end else begin : g_auto
            reg [WW-1:0] weights [0:WD-1];
            reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
            initial begin
                $readmemh(WEIGHT_FILE, weights);
                if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
            end
            always @(posedge clk) if (wren) wq <= weights[wraddr];
            always @(posedge clk) if (tren) tq <= thresholds[traddr];
        end
    endgenerate

    // writer: fills bank wbank at widx; a completed bank is full until folded
    reg wbank, cbank;
    reg [SFW:0] widx;
    reg [1:0] full;
    assign in_tready = !full[wbank];
    wire take = in_tvalid && in_tready;
    wire same = (wbank == cbank) && !full[cbank];      // compute reads the bank being filled
    wire stored = full[cbank] || (same && ({1'b0, sf} < widx));
    wire bypass = same && ({1'b0, sf} == widx) && take;
    assign fire = (stored || bypass) && (!last_sf || can_emit);

    // Datapath functions (combinational logic; the datapath block below calls them only
    // when a fold fires, so a simulator skips them in the other cycles).

    // signed >= as an unsigned compare with the sign bits flipped (same result)
    localparam [ACC_BITS-1:0] SIGN = {1'b1, {(ACC_BITS-1){1'b0}}};
    function automatic ge_signed(input [ACC_BITS-1:0] a, input [ACC_BITS-1:0] b);
        ge_signed = (a ^ SIGN) >= (b ^ SIGN);
    endfunction

    // dot product of one synapse fold: SIMD inputs x one PE's SIMD weights
    function automatic [ACC_BITS-1:0] fold_dot(input [SIMD*IN_BITS-1:0] xv,
                                               input [SIMD*W_BITS-1:0] wv);
        integer i;
        reg [ACC_BITS-1:0] e, w;
        begin
            if (XNOR != 0) begin
                fold_dot = $countones(~(xv[SIMD-1:0] ^ wv[SIMD-1:0]));
            end else begin
                fold_dot = 0;
                for (i = 0; i < SIMD; i = i + 1) begin
                    e = xv[i*IN_BITS +: IN_BITS];           // zero-extended
                    if (IN_SIGNED != 0 && xv[i*IN_BITS+IN_BITS-1])
                        e = e - (1 << IN_BITS);             // sign-extended
                    if (W_BITS == 1) begin
                        fold_dot = wv[i] ? fold_dot + e : fold_dot - e;
                    end else begin                          // modulo 2^ACC_BITS: exact
                        w = wv[i*W_BITS +: W_BITS];
                        if (wv[i*W_BITS+W_BITS-1]) w = w - (1 << W_BITS);
                        fold_dot = fold_dot + e * w;
                    end
                end
            end
        end
    endfunction

    // activation of one completed sum: ACT_VAL + #{t : sum >= T[t]}, or the raw sum
    // (the raw sum sign-extended when the output type is wider than the accumulator:
    // the accumulator always has a sign bit, see hw/rtl/mvau.py acc_bits)
    function automatic [OUT_BITS-1:0] activate(input [ACC_BITS-1:0] v,
                                               input [TW*ACC_BITS-1:0] thr);
        integer i;
        reg [OUT_BITS+1:0] count;
        reg [OUT_BITS+ACC_BITS-1:0] wide;
        begin
            if (N_THRES == 0) begin
                wide = {{OUT_BITS{v[ACC_BITS-1]}}, v};
                activate = wide[OUT_BITS-1:0];
            end else begin
                count = ACT_VAL;
                for (i = 0; i < TW; i = i + 1)
                    count = count + {{(OUT_BITS+1){1'b0}}, ge_signed(v, thr[i*ACC_BITS +: ACC_BITS])};
                activate = count[OUT_BITS-1:0];
            end
        end
    endfunction

    // Control: input banks and fold counters
    always @(posedge clk) begin
        if (!rst_n) begin
            sf <= 0;
            nf <= 0;
            wbank <= 1'b0;
            cbank <= 1'b0;
            widx <= 0;
            full <= 2'b00;
            out_tvalid <= 1'b0;
        end else begin
            if (out_tvalid && out_tready) out_tvalid <= 1'b0;
            if (take) begin
                ibuf[wbank * SF + widx[SFW-1:0]] <= in_tdata;
                if (widx == SF - 1) begin
                    widx <= 0;
                    full[wbank] <= 1'b1;
                    wbank <= ~wbank;
                end else begin
                    widx <= widx + 1;
                end
            end
            if (fire) begin
                if (last_sf) begin
                    out_tvalid <= 1'b1;
                    sf <= 0;
                    if (last_nf) begin
                        nf <= 0;
                        full[cbank] <= 1'b0;          // after the writer's set: wins
                        cbank <= ~cbank;
                    end else begin
                        nf <= nf + 1;
                    end
                end else begin
                    sf <= sf + 1;
                end
            end
        end
    end

    // Datapath: one fold of PE dot products, only when a fold fires (a simulator skips it
    // in the other cycles). acc, one partial sum per PE, is read and written only here,
    // so blocking assignments (a register all the same; a simulator skips delayed writes).
    reg [ACC_BITS-1:0] acc [0:PE-1];
    // a PE's partial sum after this fold (automatic: no state of its own)
    function automatic [ACC_BITS-1:0] pe_sum(input [SIMD*IN_BITS-1:0] xv,
                                             input [SIMD*W_BITS-1:0] wv,
                                             input [ACC_BITS-1:0] prev, input first);
        pe_sum = fold_dot(xv, wv) + (first ? {ACC_BITS{1'b0}} : prev);
    endfunction

    always @(posedge clk) begin : datapath
        integer p;
        if (rst_n && fire) begin
            for (p = 0; p < PE; p = p + 1) begin
                /* verilator lint_off BLKSEQ */
                acc[p] = pe_sum(stored ? ibuf[cbank * SF + sf] : in_tdata,
                                wq[p*SIMD*W_BITS +: SIMD*W_BITS], acc[p], sf == 0);
                /* verilator lint_on BLKSEQ */
                if (last_sf)
                    out_tdata[p*OUT_BITS +: OUT_BITS] <= activate(acc[p],
                        tq[p*TW*ACC_BITS +: TW*ACC_BITS]);
            end
        end
    end
endmodule
