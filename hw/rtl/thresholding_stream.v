// Multi-threshold activation (FINN's Thresholding): per channel c, out = ACT_VAL +
// #{t : x >= T[c][t]}. PE lanes per beat; channel fold nf = beat index modulo C/PE
// (channel nf*PE+p in lane p). Thresholds: $readmemh(THRES_FILE), C/PE words of
// PE*N_THRES*IN_BITS bits (two's complement if IN_SIGNED), field p*N_THRES+t.
// One beat per cycle, in two pipeline stages (the compares, then the count + ACT_VAL) into
// a 4-entry output FIFO whose head is out_tdata: LATENCY = 2 cycles from a beat taken to
// its output. in_tready is a credit count (outputs in flight or queued < 4), not a
// function of out_tready.
`timescale 1ns / 1ps
module thresholding_stream #(
    parameter integer C = 4,
    parameter integer PE = 1,
    parameter integer IN_BITS = 4,
    parameter integer IN_SIGNED = 1,
    parameter integer N_THRES = 1,
    parameter integer OUT_BITS = 1,
    parameter integer ACT_VAL = 0,
    parameter THRES_FILE = "thresholds.hex"
) (
    input  wire                   clk,
    input  wire                   rst_n,
    input  wire [PE*IN_BITS-1:0]  in_tdata,
    input  wire                   in_tvalid,
    output wire                   in_tready,
    output wire [PE*OUT_BITS-1:0] out_tdata,
    output wire                   out_tvalid,
    input  wire                   out_tready
);
    localparam integer NF = C / PE;
    localparam integer NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam integer TB = IN_BITS + 1;     // thresholds may be one above the input range
    reg [PE*N_THRES*TB-1:0] thresholds [0:NF-1];
    initial $readmemh(THRES_FILE, thresholds);

    reg [NFW-1:0] nf;
    // output FIFO and credits
    reg [PE*OUT_BITS-1:0] ofifo [0:3];
    reg [2:0] owr, ord, cred;                   // pointers with a wrap bit; cred <= 4
    assign out_tvalid = (owr != ord);
    assign out_tdata = ofifo[ord[1:0]];
    wire pop = out_tvalid && out_tready;
    assign in_tready = !cred[2];
    wire take = in_tvalid && in_tready;
    reg v1;                                     // stage 1 holds a beat's compare counts
    localparam integer NG = (N_THRES + 3) / 4;  // compares counted in groups of 4
    reg [PE*NG*3-1:0] ge1;

    // stage 0: one lane's compares x >= T[t], counted per group of 4 (automatic: no state)
    function automatic [NG*3-1:0] compares(input [IN_BITS-1:0] v,
                                           input [N_THRES*TB-1:0] thr);
        reg signed [TB:0] x, t_val;
        reg [NG*4-1:0] ge;
        integer t;
        begin
            x = IN_SIGNED ? {{2{v[IN_BITS-1]}}, v} : {2'b00, v};
            ge = 0;
            for (t = 0; t < N_THRES; t = t + 1) begin
                t_val = {thr[t*TB+TB-1], thr[t*TB +: TB]};
                ge[t] = x >= t_val;
            end
            for (t = 0; t < NG; t = t + 1)
                compares[t*3 +: 3] = $countones(ge[t*4 +: 4]);
        end
    endfunction

    // stage 1: ACT_VAL + #{t : x >= T[t]}, the sum of the group counts
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

    always @(posedge clk) begin
        if (!rst_n) begin
            nf <= 0;
            v1 <= 1'b0;
            owr <= 0;
            ord <= 0;
            cred <= 0;
        end else begin
            v1 <= take;
            if (take) nf <= (nf == NF - 1) ? 0 : nf + 1;
            if (v1) owr <= owr + 1'b1;
            if (pop) ord <= ord + 1'b1;
            cred <= cred + {2'b0, take} - {2'b0, pop};
        end
    end

    // the datapath is evaluated in the clocked block, only for a stage holding a beat (a
    // simulator skips it in the other cycles; synthesis gives the same logic); stage 1
    // first, so it reads stage 0's registers from the previous cycle
    integer p;
    always @(posedge clk) begin : datapath
        reg [PE*OUT_BITS-1:0] word;
        /* verilator lint_off BLKSEQ */
        if (v1) begin
            for (p = 0; p < PE; p = p + 1)
                word[p*OUT_BITS +: OUT_BITS] = activate(ge1[p*NG*3 +: NG*3]);
            ofifo[owr[1:0]] <= word;
        end
        if (take) begin
            for (p = 0; p < PE; p = p + 1)
                ge1[p*NG*3 +: NG*3] = compares(in_tdata[p*IN_BITS +: IN_BITS],
                    thresholds[nf][p*N_THRES*TB +: N_THRES*TB]);
        end
        /* verilator lint_on BLKSEQ */
    end
endmodule
