// uart_shell: an accelerator's input and output streams behind a UART (8N1), with a framed
// request/response protocol. Plain Verilog-2005 (Verilator, Yosys read_verilog).
//
// Module and ports (for a board top):
//   uart_shell #(
//     .CLK_HZ(clk frequency in Hz), .BAUD(line rate, e.g. 3000000),
//     .IN_WIDTH(accelerator input tdata bits), .OUT_WIDTH(output tdata bits),
//     .IN_BEATS(input beats per image), .OUT_BEATS(output beats per image),
//     .TIMEOUT_CYCLES(line idle time that ends a frame; default CLK_HZ / 20 = 50 ms),
//     .ACC_TIMEOUT_CYCLES(accelerator idle time that aborts a run; default CLK_HZ = 1 s),
//     .DESIGN_ID(32-bit number the host can check, e.g. a hash of the build; default 0)
//   ) shell (
//     .clk, .rst_n (synchronous, active low),
//     .uart_rx (from the host: FT231X TXD), .uart_tx (to the host: FT231X RXD),
//     .led[7:0] (status, below),
//     .acc_rst_n (reset for the accelerator: rst_n, and low for 16 cycles after an
//                 accelerator timeout),
//     .acc_in_tdata[IN_WIDTH-1:0], .acc_in_tvalid, .acc_in_tready    (shell -> accelerator),
//     .acc_out_tdata[OUT_WIDTH-1:0], .acc_out_tvalid, .acc_out_tready (accelerator -> shell)
//   );
//
// Protocol (all multi-byte fields little-endian except the CRC):
//   request  = 0xA5, cmd (1 byte), len (4 bytes), payload (len bytes), crc (2 bytes)
//   response = 0x5A, status (1 byte), len (4 bytes), payload (len bytes), crc (2 bytes)
//   crc: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor; Python's
//   binascii.crc_hqx(data, 0xFFFF)) over everything after the magic byte up to the end of
//   the payload, sent high byte first (so the CRC over the frame including it is 0).
//   Commands:
//     0x01 INFER: payload = one image, IN_BEATS beats of ceil(IN_WIDTH / 8) bytes each,
//          little-endian (element 0 in the least significant bits: FINN's packing).
//          The whole frame is received into the input buffer (IN_BEATS x IN_WIDTH bits)
//          and its length and CRC checked before the first beat goes to the accelerator.
//          Response payload: OUT_BEATS beats of ceil(OUT_WIDTH / 8) bytes, then a u32: the
//          clock cycles of the run, from the first read of the input buffer to the cycle
//          after the last output beat was taken (the accelerator's latency per image).
//     0x02 INFO: len 0. Response payload (30 bytes): u8 protocol version (1), u8 flags (0),
//          u16 IN_WIDTH, u16 OUT_WIDTH, u32 IN_BEATS, u32 OUT_BEATS, u32 CLK_HZ, u32 BAUD,
//          u32 TIMEOUT_CYCLES, u32 DESIGN_ID.
//   Status: 0x00 ok; errors have len 0:
//     0x01 bad magic (bytes outside a frame), 0x02 unknown command, 0x03 bad length,
//     0x04 bad checksum, 0x05 timeout mid-frame (the line went quiet for TIMEOUT_CYCLES
//     inside a frame), 0x06 overrun (bytes arrived while a request was being served),
//     0x07 accelerator timeout (no beat in or out for ACC_TIMEOUT_CYCLES; the accelerator
//     is then reset through acc_rst_n).
//   Every request gets exactly one response: an error found in the header (magic,
//   command, length) or an overrun discards the rest of the line until it has been quiet
//   for TIMEOUT_CYCLES, then answers; a bad CRC is answered at once. One request at a time:
//   the host waits for the response before it sends the next request.
// Choose CLK_HZ / BAUD >= 8 (3 Mbaud: run the shell at 100 MHz from the PLL, 33 clocks per
// bit, 1% off the host's rate; a host 3% off works, 5% does not in simulation), the line
// timeout far above a character (10 x CLK_HZ / BAUD cycles) and above the host's gaps
// inside a frame (USB: milliseconds), the accelerator timeout above its latency per image.
// LEDs: 0 heartbeat, 1 receiving a frame, 2 accelerator running, 3 sending a response,
//   4 the last request was answered with an error, 7:5 that error's code.
// The shell's own logic is registered state machines, byte-wide CRC and small counters
// (the line is at most a byte per 10 x CLK_HZ / BAUD cycles); the input buffer is read one
// beat per cycle into the accelerator and the output buffer written one beat per cycle.
`timescale 1ns / 1ps
module uart_shell #(
    parameter integer CLK_HZ = 100000000,
    parameter integer BAUD = 3000000,
    parameter integer IN_WIDTH = 8,
    parameter integer OUT_WIDTH = 8,
    parameter integer IN_BEATS = 784,
    parameter integer OUT_BEATS = 10,
    parameter integer TIMEOUT_CYCLES = CLK_HZ / 20,
    parameter integer ACC_TIMEOUT_CYCLES = CLK_HZ,
    parameter [31:0] DESIGN_ID = 32'd0
) (
    input  wire                 clk,
    input  wire                 rst_n,
    input  wire                 uart_rx,
    output wire                 uart_tx,
    output wire [7:0]           led,
    output reg                  acc_rst_n,
    output wire [IN_WIDTH-1:0]  acc_in_tdata,
    output wire                 acc_in_tvalid,
    input  wire                 acc_in_tready,
    input  wire [OUT_WIDTH-1:0] acc_out_tdata,
    input  wire                 acc_out_tvalid,
    output wire                 acc_out_tready
);
    localparam integer VERSION = 1;
    localparam [7:0] MAGIC_REQ = 8'hA5, MAGIC_RESP = 8'h5A;
    localparam [7:0] CMD_INFER = 8'h01, CMD_INFO = 8'h02;
    localparam [7:0] OK = 8'h00, E_MAGIC = 8'h01, E_COMMAND = 8'h02, E_LENGTH = 8'h03,
                     E_CHECKSUM = 8'h04, E_TIMEOUT = 8'h05, E_OVERRUN = 8'h06,
                     E_ACCEL = 8'h07;
    localparam integer IN_BYTES = (IN_WIDTH + 7) / 8;
    localparam integer OUT_BYTES = (OUT_WIDTH + 7) / 8;
    localparam integer IBW = IN_BYTES * 8;
    localparam integer OBW = OUT_BYTES * 8;
    localparam [31:0] IN_LEN = IN_BEATS * IN_BYTES;
    localparam [31:0] OUT_LEN = OUT_BEATS * OUT_BYTES + 4;
    localparam integer INFO_LEN = 30;
    localparam integer IAW = $clog2(IN_BEATS + 1);
    localparam integer OAW = $clog2(OUT_BEATS + 2);
    localparam integer IBC = $clog2(IN_BYTES + 1);
    localparam integer OBC = $clog2((OUT_BYTES > 4 ? OUT_BYTES : 4) + 1);
    localparam integer TW = $clog2(TIMEOUT_CYCLES + 1);
    localparam integer AW = $clog2(ACC_TIMEOUT_CYCLES + 1);
    localparam integer HB = $clog2(CLK_HZ) - 2;

    // states
    localparam [3:0] S_IDLE = 4'd0, S_CMD = 4'd1, S_LEN = 4'd2, S_CHECK = 4'd3,
                     S_PAY = 4'd4, S_CRC = 4'd5, S_VERIFY = 4'd6, S_RUN = 4'd7,
                     S_RESP = 4'd8, S_DISCARD = 4'd9;
    // response phases
    localparam [2:0] T_MAGIC = 3'd0, T_STATUS = 3'd1, T_LEN = 3'd2, T_PAY = 3'd3,
                     T_CRC_HI = 3'd4, T_CRC_LO = 3'd5, T_DONE = 3'd6;

    function [15:0] crc16;     // CRC-16/CCITT-FALSE, one byte
        input [15:0] c;
        input [7:0] d;
        integer i;
        reg [15:0] x;
        begin
            x = c ^ {d, 8'h00};
            for (i = 0; i < 8; i = i + 1)
                x = x[15] ? ({x[14:0], 1'b0} ^ 16'h1021) : {x[14:0], 1'b0};
            crc16 = x;
        end
    endfunction

    // ---------------------------------------------------------------- UART
    wire [7:0] rx_data;
    wire rx_valid, rx_ferr;
    uart_rx #(.CLK_HZ(CLK_HZ), .BAUD(BAUD)) u_rx (
        .clk(clk), .rst_n(rst_n), .rx(uart_rx), .data(rx_data), .valid(rx_valid),
        .frame_err(rx_ferr));
    reg [7:0] tx_data;
    reg tx_valid;
    wire tx_ready;
    uart_tx #(.CLK_HZ(CLK_HZ), .BAUD(BAUD)) u_tx (
        .clk(clk), .rst_n(rst_n), .data(tx_data), .valid(tx_valid), .ready(tx_ready),
        .tx(uart_tx));

    // ---------------------------------------------------------------- buffers
    reg [IN_WIDTH-1:0] imem [0:IN_BEATS-1];
    reg iw_en;
    reg [IAW-1:0] iw_addr;
    reg [IN_WIDTH-1:0] iw_data;
    always @(posedge clk) if (iw_en) imem[iw_addr] <= iw_data;

    reg [OUT_WIDTH-1:0] omem [0:OUT_BEATS-1];
    reg [OAW-1:0] out_cnt;     // output beats taken in this run
    wire out_fire = acc_out_tvalid && acc_out_tready;
    always @(posedge clk) if (out_fire && out_cnt < OUT_BEATS) omem[out_cnt] <= acc_out_tdata;
    reg [OAW-1:0] ord_addr;
    reg [OUT_WIDTH-1:0] orow;
    always @(posedge clk) orow <= omem[ord_addr];

    // ---------------------------------------------------------------- state
    reg [3:0] st;
    reg [7:0] cmd;
    reg [31:0] len;
    reg [1:0] lcnt;            // header length byte
    reg [15:0] crc;            // receive CRC
    reg [IBW-1:0] ish;         // input beat being assembled, bytes shifted in from the top
    reg [IBC-1:0] ibyte;
    reg [IAW-1:0] ibeat;
    reg ccnt;                  // CRC byte
    reg [7:0] err;             // status of the response to send
    reg overrun;
    reg [TW-1:0] idle_left;    // line quiet: counts down from TIMEOUT_CYCLES after each byte
    reg quiet;                 // ... and reached 0 (a register: the FSM reads no counter)
    wire [IBW+7:0] ish_cat = {rx_data, ish};
    wire [IBW-1:0] ish_next = ish_cat[IBW+7:8];

    // run (input buffer -> accelerator -> output buffer)
    reg [IAW-1:0] rd_addr;
    // The buffer's read (block RAM: its clock-to-out is long, 5.8 ns on ECP5) lands in a
    // register with no logic before it (in_q), then in a 4-entry register FIFO that drives
    // the accelerator; a read is issued while the FIFO has room for it and the two in
    // flight, which keeps one beat per cycle.
    reg [IN_WIDTH-1:0] in_rd, in_q;
    reg rd_pend, q_pend;       // in_rd / in_q hold a beat
    reg [IN_WIDTH-1:0] f0, f1, f2, f3;
    reg [2:0] fcnt;
    wire rd_en = (st == S_RUN) && (rd_addr != IN_BEATS) && (fcnt + rd_pend + q_pend < 3'd4);
    always @(posedge clk) if (rd_en) in_rd <= imem[rd_addr];
    always @(posedge clk) in_q <= in_rd;
    assign acc_in_tdata = f0;
    assign acc_in_tvalid = (fcnt != 3'd0);
    wire in_fire = acc_in_tvalid && acc_in_tready;
    wire [2:0] fcnt_pop = fcnt - in_fire;  // entries left after this cycle's pop
    always @(posedge clk) begin
        if (in_fire) begin
            f0 <= f1;
            f1 <= f2;
            f2 <= f3;
        end
        if (q_pend) begin
            if (fcnt_pop == 3'd0) f0 <= in_q;
            if (fcnt_pop == 3'd1) f1 <= in_q;
            if (fcnt_pop == 3'd2) f2 <= in_q;
            if (fcnt_pop == 3'd3) f3 <= in_q;
        end
        if (!rst_n || st != S_RUN) begin
            fcnt <= 3'd0;
            rd_pend <= 1'b0;
            q_pend <= 1'b0;
        end else begin
            fcnt <= fcnt_pop + q_pend;
            rd_pend <= rd_en;
            q_pend <= rd_pend;
        end
    end
    reg run_done;              // registered: every beat in, every beat out
    always @(posedge clk)
        run_done <= (st == S_RUN) && (out_cnt == OUT_BEATS) && (rd_addr == IN_BEATS)
                    && !rd_pend && !q_pend && (fcnt == 3'd0);
    // outside a run, stray output beats (a run that timed out) are drained
    assign acc_out_tready = (st != S_RUN) || (out_cnt != OUT_BEATS);
    reg [31:0] cycles;
    reg [AW-1:0] acc_left;     // accelerator idle: counts down from ACC_TIMEOUT_CYCLES
    reg acc_dead;              // ... and reached 0
    reg [4:0] acc_rst_cnt;

    // response
    reg [2:0] tph;
    reg [15:0] tcrc;
    reg tcrc_pend;             // tx_data goes into tcrc next cycle (the mux and the CRC apart)
    reg [31:0] rlen;
    reg [OAW-1:0] tbeat;       // INFER: output beat (OUT_BEATS: the cycle count)
    reg [OBC-1:0] tbyte;
    reg [4:0] tinfo;           // INFO: payload byte

    wire [31:0] p_in_w = IN_WIDTH, p_out_w = OUT_WIDTH, p_in_b = IN_BEATS, p_out_b = OUT_BEATS,
                p_clk = CLK_HZ, p_baud = BAUD, p_tmo = TIMEOUT_CYCLES, p_id = DESIGN_ID,
                p_ver = VERSION;
    wire [8*INFO_LEN-1:0] info = {p_id, p_tmo, p_baud, p_clk, p_out_b, p_in_b, p_out_w[15:0],
                                  p_in_w[15:0], 8'd0, p_ver[7:0]};
    wire [OBW-1:0] orow_pad = orow;
    wire [7:0] pay_byte = (cmd != CMD_INFER) ? info[{tinfo, 3'b000} +: 8]
                        : (tbeat == OUT_BEATS) ? cycles[{tbyte[1:0], 3'b000} +: 8]
                        : orow_pad[{tbyte, 3'b000} +: 8];
    wire pay_last = (cmd != CMD_INFER) ? (tinfo == INFO_LEN - 1)
                  : (tbeat == OUT_BEATS) && (tbyte == 3);
    wire tx_take = tx_valid && tx_ready;

    reg [7:0] last_err;
    reg [HB:0] hb;
    assign led = {last_err[2:0], last_err != OK, st == S_RESP, st == S_RUN,
                  st == S_CMD || st == S_LEN || st == S_PAY || st == S_CRC, hb[HB]};

    task start_response;
        input [7:0] status;
        input [31:0] n;
        begin
            st <= S_RESP;
            err <= status;
            rlen <= n;
            tph <= T_MAGIC;
            tcrc <= 16'hFFFF;
            tcrc_pend <= 1'b0;
            tbeat <= 0;
            tbyte <= 0;
            tinfo <= 0;
            ord_addr <= 0;
        end
    endtask

    always @(posedge clk) begin
        iw_en <= 1'b0;
        hb <= hb + 1'b1;
        if (rx_valid) begin
            idle_left <= TIMEOUT_CYCLES;
            quiet <= 1'b0;
        end else if (!quiet) begin
            idle_left <= idle_left - 1'b1;
            quiet <= (idle_left == 1);
        end
        if (acc_rst_cnt != 0) acc_rst_cnt <= acc_rst_cnt - 1'b1;
        acc_rst_n <= rst_n && (acc_rst_cnt == 0);
        if (!rst_n) begin
            st <= S_IDLE;
            tx_valid <= 1'b0;
            overrun <= 1'b0;
            idle_left <= 0;
            quiet <= 1'b1;
            acc_rst_cnt <= 0;
            last_err <= OK;
            err <= OK;
            hb <= 0;
            out_cnt <= 0;
            cmd <= 8'd0;
        end else begin
            case (st)
                S_IDLE: begin
                    overrun <= 1'b0;
                    if (rx_valid) begin
                        if (rx_data == MAGIC_REQ) begin
                            st <= S_CMD;
                            crc <= 16'hFFFF;
                        end else begin
                            st <= S_DISCARD;
                            err <= E_MAGIC;
                        end
                    end
                end
                S_CMD: if (rx_valid) begin
                    cmd <= rx_data;
                    crc <= crc16(crc, rx_data);
                    lcnt <= 0;
                    st <= S_LEN;
                end else if (quiet) start_response(E_TIMEOUT, 0);
                S_LEN: if (rx_valid) begin
                    len <= {rx_data, len[31:8]};
                    crc <= crc16(crc, rx_data);
                    lcnt <= lcnt + 1'b1;
                    if (lcnt == 2'd3) st <= S_CHECK;
                end else if (quiet) start_response(E_TIMEOUT, 0);
                S_CHECK: begin
                    ibyte <= 0;
                    ibeat <= 0;
                    ccnt <= 1'b0;
                    if (cmd != CMD_INFER && cmd != CMD_INFO) begin
                        st <= S_DISCARD;
                        err <= E_COMMAND;
                    end else if (len != ((cmd == CMD_INFER) ? IN_LEN : 32'd0)) begin
                        st <= S_DISCARD;
                        err <= E_LENGTH;
                    end else begin
                        st <= (cmd == CMD_INFER) ? S_PAY : S_CRC;
                    end
                end
                S_PAY: if (rx_valid) begin
                    crc <= crc16(crc, rx_data);
                    if (ibyte == IN_BYTES - 1) begin
                        iw_en <= 1'b1;
                        iw_addr <= ibeat;
                        iw_data <= ish_next[IN_WIDTH-1:0];
                        ibyte <= 0;
                        ibeat <= ibeat + 1'b1;
                        if (ibeat == IN_BEATS - 1) st <= S_CRC;
                    end else begin
                        ish <= ish_next;
                        ibyte <= ibyte + 1'b1;
                    end
                end else if (quiet) start_response(E_TIMEOUT, 0);
                S_CRC: if (rx_valid) begin
                    crc <= crc16(crc, rx_data);
                    ccnt <= 1'b1;
                    if (ccnt) st <= S_VERIFY;
                end else if (quiet) start_response(E_TIMEOUT, 0);
                S_VERIFY: begin
                    if (crc != 16'h0000) start_response(E_CHECKSUM, 0);
                    else if (cmd == CMD_INFO) start_response(OK, INFO_LEN);
                    else begin
                        st <= S_RUN;
                        rd_addr <= 0;
                        out_cnt <= 0;
                        cycles <= 0;
                        acc_left <= ACC_TIMEOUT_CYCLES;
                        acc_dead <= 1'b0;
                    end
                    if (rx_valid) overrun <= 1'b1;
                end
                S_RUN: begin
                    if (rx_valid) overrun <= 1'b1;
                    cycles <= cycles + 1'b1;
                    if (rd_en) rd_addr <= rd_addr + 1'b1;
                    if (out_fire) out_cnt <= out_cnt + 1'b1;
                    if (in_fire || out_fire) begin
                        acc_left <= ACC_TIMEOUT_CYCLES;
                        acc_dead <= 1'b0;
                    end else if (!acc_dead) begin
                        acc_left <= acc_left - 1'b1;
                        acc_dead <= (acc_left == 1);
                    end
                    if (run_done) begin
                        start_response(OK, OUT_LEN);
                    end else if (acc_dead) begin
                        start_response(E_ACCEL, 0);
                        acc_rst_cnt <= 5'd16;
                    end
                end
                S_RESP: begin
                    if (rx_valid) overrun <= 1'b1;
                    tcrc_pend <= 1'b0;
                    if (tcrc_pend) tcrc <= crc16(tcrc, tx_data);
                    if (tx_take) tx_valid <= 1'b0;
                    else if (!tx_valid) begin
                        // the next byte (the UART takes it; the one before is on the line)
                        tx_valid <= (tph != T_DONE);
                        case (tph)
                            T_MAGIC: begin
                                tx_data <= MAGIC_RESP;
                                tph <= T_STATUS;
                            end
                            T_STATUS: begin
                                tx_data <= err;
                                tcrc_pend <= 1'b1;
                                tph <= T_LEN;
                                tbyte <= 0;
                            end
                            T_LEN: begin
                                tx_data <= rlen[{tbyte[1:0], 3'b000} +: 8];
                                tcrc_pend <= 1'b1;
                                tbyte <= (tbyte[1:0] == 2'd3) ? 0 : tbyte + 1'b1;
                                if (tbyte[1:0] == 2'd3) tph <= (rlen == 0) ? T_CRC_HI : T_PAY;
                            end
                            T_PAY: begin
                                tx_data <= pay_byte;
                                tcrc_pend <= 1'b1;
                                tinfo <= tinfo + 1'b1;
                                if (tbeat != OUT_BEATS && tbyte == OUT_BYTES - 1) begin
                                    tbyte <= 0;
                                    tbeat <= tbeat + 1'b1;
                                    ord_addr <= ord_addr + 1'b1;   // orow ready in 2 cycles
                                end else begin
                                    tbyte <= tbyte + 1'b1;
                                end
                                if (pay_last) tph <= T_CRC_HI;
                            end
                            T_CRC_HI: begin
                                tx_data <= tcrc[15:8];
                                tph <= T_CRC_LO;
                            end
                            T_CRC_LO: begin
                                tx_data <= tcrc[7:0];
                                tph <= T_DONE;
                            end
                            default: begin           // T_DONE: the last byte is on the line
                                if (tx_ready) begin
                                    last_err <= err;
                                    if (overrun) begin
                                        st <= S_DISCARD;
                                        err <= E_OVERRUN;
                                        overrun <= 1'b0;
                                    end else begin
                                        st <= S_IDLE;
                                    end
                                end
                            end
                        endcase
                    end
                end
                S_DISCARD: begin
                    // swallow the rest of the line; answer once it has been quiet
                    if (!rx_valid && quiet) start_response(err, 0);
                end
                default: st <= S_IDLE;
            endcase
        end
    end
endmodule
