// Stream data width converter (FINN's StreamingDataWidthConverter): the element sequence
// is unchanged, only the number of elements per beat changes, element 0 in the LSBs.
// IN_W and OUT_W (bits) must be integer multiples of each other; the stitcher chains an
// up- and a down-converter through their least common multiple otherwise.
`timescale 1ns / 1ps
module stream_dwc #(
    parameter integer IN_W = 8,
    parameter integer OUT_W = 32
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [IN_W-1:0]  in_tdata,
    input  wire             in_tvalid,
    output wire             in_tready,
    output wire [OUT_W-1:0] out_tdata,
    output wire             out_tvalid,
    input  wire             out_tready
);
    generate
        if (OUT_W == IN_W) begin : g_same
            assign out_tdata = in_tdata;
            assign out_tvalid = in_tvalid;
            assign in_tready = out_tready;
        end else if (OUT_W > IN_W) begin : g_up
            localparam integer R = OUT_W / IN_W;
            localparam integer CW = (R > 1) ? $clog2(R) : 1;
            reg [OUT_W-1:0] buffer;
            reg [CW-1:0] count;
            reg full;
            assign in_tready = !full || out_tready;
            assign out_tvalid = full;
            assign out_tdata = buffer;
            always @(posedge clk) begin
                if (!rst_n) begin
                    count <= 0;
                    full <= 1'b0;
                end else begin
                    if (full && out_tready) full <= 1'b0;
                    if (in_tvalid && in_tready) begin
                        buffer <= {in_tdata, buffer[OUT_W-1:IN_W]};   // element 0 ends low
                        if (count == R - 1) begin
                            count <= 0;
                            full <= 1'b1;
                        end else begin
                            count <= count + 1;
                        end
                    end
                end
            end
        end else begin : g_down
            localparam integer R = IN_W / OUT_W;
            localparam integer CW = (R > 1) ? $clog2(R) : 1;
            reg [IN_W-1:0] buffer;
            reg [CW-1:0] count;
            reg full;
            assign out_tvalid = full;
            assign out_tdata = buffer[OUT_W-1:0];
            wire last = (count == R - 1);
            assign in_tready = !full || (last && out_tready);
            always @(posedge clk) begin
                if (!rst_n) begin
                    count <= 0;
                    full <= 1'b0;
                end else begin
                    if (full && out_tready) begin
                        if (last) begin
                            count <= 0;
                            full <= 1'b0;
                        end else begin
                            count <= count + 1;
                            buffer <= buffer >> OUT_W;                // next element low
                        end
                    end
                    if (in_tvalid && in_tready) begin
                        buffer <= in_tdata;
                        full <= 1'b1;
                    end
                end
            end
        end
    endgenerate
endmodule
