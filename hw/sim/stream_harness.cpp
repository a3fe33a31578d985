// Generic Verilator harness for a module with one input and one output stream
// (in_tdata/in_tvalid/in_tready, out_tdata/out_tvalid/out_tready, clk, rst_n).
//
//   ./Vtop INPUT_FILE OUTPUT_FILE N_OUT IN_VALID_PROB OUT_READY_PROB SEED MAX_CYCLES [IDLE]
//
// INPUT_FILE: one beat per line, 32-bit hex words, least significant word first.
// OUTPUT_FILE: one line per output beat: the cycle it was accepted, then its words.
// Compiled with -DSTATS_WORDS=N, the top's `stats` port (N x 32-bit, unpacked) is written as
// a line "stats <n> ..." before the last line, which is always
// "cycles <n> in_beats <n> out_beats <n> stalled <0|1> seconds <s> wall_seconds <s>": the
// simulation loop's CPU time (this thread, one core: what other processes on a shared
// machine take is not counted) and its wall-clock time.
// Probabilities are per cycle (1.0 = always valid / always ready). Ends when N_OUT beats
// came out, after MAX_CYCLES, or after IDLE cycles (default 100000) in which no beat went
// in or out (then stalled = 1: the caller reports a stuck stream).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>
#include "verilated.h"
#include TOP_HEADER

typedef std::vector<uint32_t> Beat;

static void put(CData& d, const Beat& b) { d = b.empty() ? 0 : b[0]; }
static void put(SData& d, const Beat& b) { d = b.empty() ? 0 : b[0]; }
static void put(IData& d, const Beat& b) { d = b.empty() ? 0 : b[0]; }
static void put(QData& d, const Beat& b) {
    d = (b.size() > 0 ? (QData)b[0] : 0) | (b.size() > 1 ? ((QData)b[1] << 32) : 0);
}
template <std::size_t N> static void put(VlWide<N>& d, const Beat& b) {
    for (std::size_t i = 0; i < N; i++) d[i] = i < b.size() ? b[i] : 0;
}
static Beat get(CData d) { return Beat{(uint32_t)d}; }
static Beat get(SData d) { return Beat{(uint32_t)d}; }
static Beat get(IData d) { return Beat{(uint32_t)d}; }
static Beat get(QData d) { return Beat{(uint32_t)d, (uint32_t)(d >> 32)}; }
template <std::size_t N> static Beat get(const VlWide<N>& d) {
    Beat b(N);
    for (std::size_t i = 0; i < N; i++) b[i] = d[i];
    return b;
}

static double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char** argv) {
    if (argc < 8) {
        std::fprintf(stderr, "usage: %s IN OUT N_OUT P_VALID P_READY SEED MAX_CYCLES\n", argv[0]);
        return 2;
    }
    std::vector<Beat> inputs;
    FILE* fin = std::fopen(argv[1], "r");
    if (!fin) { std::perror(argv[1]); return 2; }
    char line[1 << 16];
    while (std::fgets(line, sizeof line, fin)) {
        Beat b;
        char* p = line;
        while (*p) {
            char* end;
            unsigned long v = std::strtoul(p, &end, 16);
            if (end == p) break;
            b.push_back((uint32_t)v);
            p = end;
        }
        if (!b.empty()) inputs.push_back(b);
    }
    std::fclose(fin);
    const long n_out = std::atol(argv[3]);
    const double p_valid = std::atof(argv[4]), p_ready = std::atof(argv[5]);
    std::mt19937_64 rng(std::strtoull(argv[6], nullptr, 10));
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    const long max_cycles = std::atol(argv[7]);
    const long idle_limit = argc > 8 ? std::atol(argv[8]) : 100000;
    long last_progress = 0;

    VerilatedContext ctx;
    TOP_CLASS top(&ctx);
    FILE* fout = std::fopen(argv[2], "w");
    if (!fout) { std::perror(argv[2]); return 2; }
    top.clk = 0;
    top.rst_n = 0;
    top.in_tvalid = 0;
    top.out_tready = 0;
    for (int i = 0; i < 4; i++) { top.clk = !top.clk; top.eval(); }
    top.rst_n = 1;
    // one more cycle before the first beat: a top that registers its reset (the stitched
    // accelerator) leaves reset one cycle after rst_n rises
    for (int i = 0; i < 2; i++) { top.clk = !top.clk; top.eval(); }

    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = thread_cpu_seconds();
    std::size_t next_in = 0;
    long got = 0, cycle = 0;
    bool offer = false;
    while (got < n_out && cycle < max_cycles && cycle - last_progress < idle_limit) {
        // drive inputs for this cycle (a valid beat stays offered until accepted)
        if (!offer && next_in < inputs.size()) offer = p_valid >= 1.0 || coin(rng) < p_valid;
        top.in_tvalid = offer ? 1 : 0;
        if (offer) put(top.in_tdata, inputs[next_in]);
        top.out_tready = (p_ready >= 1.0 || coin(rng) < p_ready) ? 1 : 0;
        top.clk = 0;
        top.eval();
        bool in_fire = top.in_tvalid && top.in_tready;
        bool out_fire = top.out_tvalid && top.out_tready;
        if (out_fire) {
            Beat b = get(top.out_tdata);
            std::fprintf(fout, "%ld", cycle);
            for (uint32_t w : b) std::fprintf(fout, " %08x", w);
            std::fprintf(fout, "\n");
            got++;
        }
        top.clk = 1;
        top.eval();
        if (in_fire) { next_in++; offer = false; }
        if (in_fire || out_fire) last_progress = cycle;
        cycle++;
    }
#ifdef STATS_WORDS
    // per-layer counters of the generated top (see hw/sim/stitch.py)
    std::fprintf(fout, "stats");
    for (int i = 0; i < STATS_WORDS; i++) std::fprintf(fout, " %u", (unsigned)top.stats[i]);
    std::fprintf(fout, "\n");
#endif
    const double cpu_seconds = thread_cpu_seconds() - cpu0;
    const double wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(fout, "cycles %ld in_beats %zu out_beats %ld stalled %d seconds %.6f "
                 "wall_seconds %.6f\n", cycle, next_in, got, got < n_out ? 1 : 0, cpu_seconds,
                 wall_seconds);
    std::fclose(fout);
    top.final();
    return 0;
}
