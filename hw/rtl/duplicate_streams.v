// DuplicateStreams with N outputs (FINN's DuplicateStreams): every input beat goes to all
// outputs. Each output has its own one-beat register, so outputs drain independently;
// the input is taken once every output register is free (or being emptied this cycle).
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
    wire [N-1:0] free = ~out_tvalid | out_tready;
    assign in_tready = &free;
    wire take = in_tvalid && in_tready;
    integer i;
    always @(posedge clk) begin
        if (!rst_n) begin
            out_tvalid <= 0;
        end else begin
            for (i = 0; i < N; i = i + 1) begin
                if (take) begin
                    out_tdata[i*WIDTH +: WIDTH] <= in_tdata;
                    out_tvalid[i] <= 1'b1;
                end else if (out_tready[i]) begin
                    out_tvalid[i] <= 1'b0;
                end
            end
        end
    end
endmodule
