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
//   XNOR = 0: IN_BITS-bit inputs x bipolar weights (weight bit 1 = +1, 0 = -1)
//   N_THRES > 0: out = #{t : acc >= T[ch][t]} + ACT_VAL   (FINN MultiThreshold)
//   N_THRES = 0: out = acc                                 (FINN noActivation)
//
// Weights: $readmemh(WEIGHT_FILE), NF*SF words of PE*SIMD bits, word nf*SF+sf, bit
// p*SIMD+s = weight of output channel nf*PE+p for input element sf*SIMD+s.
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
    parameter integer ACC_BITS = 16,
    parameter integer N_THRES = 1,
    parameter integer OUT_BITS = 1,
    parameter integer ACT_VAL = 0,
    parameter WEIGHT_FILE = "weights.hex",
    parameter THRES_FILE = "thresholds.hex"
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

    reg [PE*SIMD-1:0] weights [0:NF*SF-1];
    reg [PE*TW*ACC_BITS-1:0] thresholds [0:NF-1];
    reg [SIMD*IN_BITS-1:0] ibuf [0:2*SF-1];     // two banks of SF beats
    initial begin
        $readmemh(WEIGHT_FILE, weights);
        if (N_THRES > 0) $readmemh(THRES_FILE, thresholds);
    end

    reg [SFW-1:0] sf;
    reg [NFW-1:0] nf;
    wire last_sf = (sf == SF - 1);
    wire last_nf = (nf == NF - 1);
    wire can_emit = !out_tvalid || out_tready;

    // writer: fills bank wbank at widx; a completed bank is full until folded
    reg wbank, cbank;
    reg [SFW:0] widx;
    reg [1:0] full;
    assign in_tready = !full[wbank];
    wire take = in_tvalid && in_tready;
    wire same = (wbank == cbank) && !full[cbank];      // compute reads the bank being filled
    wire stored = full[cbank] || (same && ({1'b0, sf} < widx));
    wire bypass = same && ({1'b0, sf} == widx) && take;
    wire fire = (stored || bypass) && (!last_sf || can_emit);

    wire [SIMD*IN_BITS-1:0] x = stored ? ibuf[cbank * SF + sf] : in_tdata;
    wire [PE*SIMD-1:0] w = weights[nf * SF + sf];

    // per-PE partial dot product of this fold, and the running sum
    reg signed [ACC_BITS-1:0] acc [0:PE-1];
    reg signed [ACC_BITS-1:0] partial [0:PE-1];
    reg signed [ACC_BITS-1:0] total [0:PE-1];
    reg signed [IN_BITS:0] elem;
    integer p, s, t;
    always @* begin
        for (p = 0; p < PE; p = p + 1) begin
            partial[p] = 0;
            if (XNOR != 0) begin
                partial[p] = $countones(~(x[SIMD-1:0] ^ w[p*SIMD +: SIMD]));
            end else for (s = 0; s < SIMD; s = s + 1) begin
                begin
                    if (IN_SIGNED != 0)
                        elem = {x[s*IN_BITS+IN_BITS-1], x[s*IN_BITS +: IN_BITS]};
                    else
                        elem = {1'b0, x[s*IN_BITS +: IN_BITS]};
                    if (w[p*SIMD+s]) partial[p] = partial[p] + elem;
                    else partial[p] = partial[p] - elem;
                end
            end
            total[p] = (sf == 0) ? partial[p] : acc[p] + partial[p];
        end
    end

    // activation of the completed sums
    reg [PE*OUT_BITS-1:0] act;
    reg signed [ACC_BITS-1:0] thr;
    reg signed [OUT_BITS+1:0] count;
    always @* begin
        for (p = 0; p < PE; p = p + 1) begin
            if (N_THRES == 0) begin
                act[p*OUT_BITS +: OUT_BITS] = total[p][OUT_BITS-1:0];
            end else begin
                count = ACT_VAL;
                for (t = 0; t < TW; t = t + 1) begin
                    thr = thresholds[nf][(p*TW+t)*ACC_BITS +: ACC_BITS];
                    if (total[p] >= thr) count = count + 1;
                end
                act[p*OUT_BITS +: OUT_BITS] = count[OUT_BITS-1:0];
            end
        end
    end

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
                for (p = 0; p < PE; p = p + 1) acc[p] <= total[p];
                if (last_sf) begin
                    out_tdata <= act;
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
endmodule
