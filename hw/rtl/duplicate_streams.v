// DuplicateStreams with N outputs (FINN's DuplicateStreams): every input beat goes to all
// outputs. Each output has its own two-beat queue, so outputs drain independently; the
// input is taken while every output has a free place (a registered flag each).
// One beat per cycle when all consumers are ready: cycles = beats, as FINN's exp_cycles.
`timescale 1ns / 1ps
module duplicate_streams #(
    parameter integer WIDTH = 8,
    parameter integer N = 2
) (
    input  wire               clk,
    input  wire               rst_n,
    input  wire [WIDTH-1:0]   in_tdata,
    input  wire               in_tvalid,
    output wire               in_tready,
    output reg  [N*WIDTH-1:0] out_tdata,     // output i in bits [i*WIDTH +: WIDTH]
    output reg  [N-1:0]       out_tvalid,
    input  wire [N-1:0]       out_tready
);
    // each output queues two beats (its head is out_tdata); the input is taken while no
    // output's second place is taken: in_tready is a register's function, never of an
    // out_tready (no ready path through the fork)
    reg [N*WIDTH-1:0] second;
    reg [N-1:0] full;
    assign in_tready = ~|full;
    wire take = in_tvalid && in_tready;
    wire [N-1:0] pop = out_tvalid & out_tready;
    integer i;
    always @(posedge clk) begin
        if (!rst_n) begin
            out_tvalid <= 0;
            full <= 0;
        end else begin
            for (i = 0; i < N; i = i + 1) begin
                // (take implies !full[i])
                if (full[i] ? pop[i] : take && (!out_tvalid[i] || pop[i]))
                    out_tdata[i*WIDTH +: WIDTH] <= full[i] ? second[i*WIDTH +: WIDTH]
                                                           : in_tdata;
                if (take && out_tvalid[i] && !pop[i])
                    second[i*WIDTH +: WIDTH] <= in_tdata;
                out_tvalid[i] <= take || full[i] || (out_tvalid[i] && !pop[i]);
                full[i] <= out_tvalid[i] && (full[i] ? !pop[i] : take && !pop[i]);
            end
        end
    end
endmodule
