// Verilator harness of an accelerator behind its UART shell (uart_sim_top.v): the host
// side of the serial line, simulated bit by bit.
//
//   ./Vuart_sim_top IN OUT CLKS_PER_BIT MAX_CYCLES IDLE_CYCLES
//
// IN: one step per line, "<n_responses> <hex bytes>" ("-" for no bytes): the bytes are sent
// on uart_rx back to back as 8N1 characters of CLKS_PER_BIT clocks per bit (a real
// number: a host whose baud rate is not an exact divisor of the shell's clock), then the
// harness waits until n_responses more response frames (0x5A, status, u32 length, payload, two
// CRC bytes) have come back on uart_tx, decoded by its own 8N1 receiver (sampling each bit
// in its middle, at the same CLKS_PER_BIT). A first byte other than 0x5A counts as a
// one-byte response.
// OUT: one line per response, "<cycle_step_started> <cycle_response_done> <hex bytes>",
// then "cycles C responses R stalled S seconds T wall_seconds W".
// Ends after the last step, after MAX_CYCLES, or after IDLE_CYCLES in which nothing moved on
// the line either way while a response was awaited (stalled = 1).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>
#include "verilated.h"
#include TOP_HEADER

struct Step {
    long responses;
    std::vector<uint8_t> bytes;
};

static double thread_cpu_seconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s IN OUT CLKS_PER_BIT MAX_CYCLES IDLE_CYCLES\n", argv[0]);
        return 2;
    }
    std::vector<Step> steps;
    FILE* fin = std::fopen(argv[1], "r");
    if (!fin) { std::perror(argv[1]); return 2; }
    std::string text;
    {
        char buf[1 << 16];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, fin)) > 0) text.append(buf, n);
    }
    std::fclose(fin);
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty()) continue;
        Step s;
        char* rest;
        s.responses = std::strtol(line.c_str(), &rest, 10);
        const char* p = rest;
        while (*p == ' ') p++;
        for (; p[0] && p[1] && hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2)
            s.bytes.push_back((uint8_t)(hexval(p[0]) * 16 + hexval(p[1])));
        steps.push_back(s);
    }
    const double cpb = std::atof(argv[3]);
    const long max_cycles = std::atol(argv[4]);
    const long idle_limit = std::atol(argv[5]);
    if (cpb < 4) { std::fprintf(stderr, "CLKS_PER_BIT must be >= 4\n"); return 2; }

    VerilatedContext ctx;
    TOP_CLASS top(&ctx);
    FILE* fout = std::fopen(argv[2], "w");
    if (!fout) { std::perror(argv[2]); return 2; }
    top.clk = 0;
    top.rst_n = 0;
    top.uart_rx = 1;
    for (int i = 0; i < 8; i++) { top.clk = !top.clk; top.eval(); }
    top.rst_n = 1;
    for (int i = 0; i < 4; i++) { top.clk = !top.clk; top.eval(); }

    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = thread_cpu_seconds();
    long cycle = 0, last_activity = 0, total_responses = 0;
    bool stalled = false;
    // receiver state (host side): sample j (0 start, 1..8 data, 9 stop) is taken (j + 0.5)
    // bit periods after the falling edge of the start bit
    bool rx_busy = false;
    long rx_edge = 0;
    int rx_j = 0;
    uint8_t rx_shift = 0;
    long want = 0;               // responses awaited up to this step
    std::vector<uint8_t> resp;   // the response being received (may span steps)
    for (size_t si = 0; si < steps.size() && !stalled && cycle < max_cycles; si++) {
        const Step& s = steps[si];
        const long step_start = cycle;
        size_t byte_i = 0;
        double char_start = (double)cycle;   // when the current character's start bit began
        want += s.responses;
        while (cycle < max_cycles) {
            const bool sending = byte_i < s.bytes.size();
            if (!sending && total_responses >= want) break;
            if (!sending && cycle - last_activity >= idle_limit) { stalled = true; break; }
            // drive the line for this cycle
            int line = 1;
            if (sending) {
                int bit_i = (int)((cycle - char_start) / cpb);   // 0 start, 1..8 data, 9 stop
                if (bit_i >= 10) {
                    char_start += 10 * cpb;
                    byte_i++;
                    bit_i = (int)((cycle - char_start) / cpb);
                }
                if (byte_i < s.bytes.size()) {
                    const uint8_t b = s.bytes[byte_i];
                    line = bit_i == 0 ? 0 : bit_i == 9 ? 1 : (b >> (bit_i - 1)) & 1;
                }
                last_activity = cycle;
            }
            top.uart_rx = line;
            top.clk = 0;
            top.eval();
            top.clk = 1;
            top.eval();
            // host receiver: sample the shell's tx line after the edge
            const int tx = top.uart_tx;
            if (!rx_busy) {
                // a low line when idle starts a character (as the shell's uart_rx: after a
                // stop bit, the next start bit may already have begun)
                if (!tx) { rx_busy = true; rx_edge = cycle; rx_j = 0; rx_shift = 0; }
            } else if (cycle - rx_edge >= (long)((rx_j + 0.5) * cpb)) {
                if (rx_j == 0) {
                    if (tx) rx_busy = false;                      // a glitch, not a start bit
                } else if (rx_j <= 8) {
                    rx_shift = (uint8_t)((rx_shift >> 1) | (tx ? 0x80 : 0));
                }
                if (rx_busy && ++rx_j == 10) {
                    rx_busy = false;
                    last_activity = cycle;
                    resp.push_back(rx_shift);   // a low stop bit still delivers the byte
                    bool done = false;
                    if (resp[0] != 0x5A) done = true;
                    else if (resp.size() >= 6) {
                        const uint64_t len = resp[2] | (resp[3] << 8) | (resp[4] << 16)
                                             | ((uint64_t)resp[5] << 24);
                        if (len > (1u << 24) || resp.size() == 6 + len + 2) done = true;
                    }
                    if (done) {
                        std::fprintf(fout, "%ld %ld ", step_start, cycle);
                        for (uint8_t b : resp) std::fprintf(fout, "%02x", b);
                        std::fprintf(fout, "\n");
                        resp.clear();
                        total_responses++;
                    }
                }
            }
            cycle++;
        }
    }
    const double cpu_seconds = thread_cpu_seconds() - cpu0;
    const double wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(fout, "cycles %ld responses %ld stalled %d seconds %.6f wall_seconds %.6f\n",
                 cycle, total_responses, stalled ? 1 : 0, cpu_seconds, wall_seconds);
    std::fclose(fout);
    top.final();
    return 0;
}
