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
            // R input beats collect in `buffer`, then move to the output register `obuf`
            // (out_tdata); in_tready is a register's function only: the collection's last
            // beat waits while obuf is still full (at most a cycle at full rate: R >= 2)
            localparam integer R = OUT_W / IN_W;
            localparam integer CW = (R > 1) ? $clog2(R) : 1;
            reg [OUT_W-1:0] buffer, obuf;
            reg [CW-1:0] count;
            reg ofull;
            wire last = (count == R - 1);
            assign in_tready = !(last && ofull);
            assign out_tvalid = ofull;
            assign out_tdata = obuf;
            wire take = in_tvalid && in_tready;
            always @(posedge clk) begin : up
                reg [OUT_W-1:0] shifted;        // (here, not a wire: computed when taken)
                if (!rst_n) begin
                    count <= 0;
                    ofull <= 1'b0;
                end else begin
                    if (ofull && out_tready) ofull <= 1'b0;
                    if (take) begin
                        shifted = {in_tdata, buffer[OUT_W-1:IN_W]};     // element 0 low
                        buffer <= shifted;
                        count <= last ? 0 : count + 1'b1;
                        if (last) begin
                            obuf <= shifted;
                            ofull <= 1'b1;
                        end
                    end
                end
            end
        end else begin : g_down
            // the word being split (`buffer`, its next element at out_tdata) and one word
            // waiting (`nxt`): in_tready is !nxt_full, a register; a word taken while the
            // buffer is free (or frees this cycle) goes straight into it
            localparam integer R = IN_W / OUT_W;
            localparam integer CW = (R > 1) ? $clog2(R) : 1;
            reg [IN_W-1:0] buffer, nxt;
            reg [CW-1:0] count;
            reg full, nxt_full;
            assign out_tvalid = full;
            assign out_tdata = buffer[OUT_W-1:0];
            wire last = (count == R - 1);
            assign in_tready = !nxt_full;
            wire take = in_tvalid && in_tready;
            wire frees = !full || (out_tready && last);      // the buffer takes a word
            always @(posedge clk) begin
                if (!rst_n) begin
                    count <= 0;
                    full <= 1'b0;
                    nxt_full <= 1'b0;
                end else begin
                    if (full && out_tready) begin
                        count <= last ? 0 : count + 1'b1;
                        buffer <= buffer >> OUT_W;                // next element low
                    end
                    if (frees) begin
                        full <= nxt_full || take;
                        if (nxt_full) buffer <= nxt;
                        else if (take) buffer <= in_tdata;
                        if (nxt_full && take) nxt <= in_tdata;
                        nxt_full <= nxt_full && take;
                    end else if (take) begin
                        nxt <= in_tdata;
                        nxt_full <= 1'b1;
                    end
                end
            end
        end
    endgenerate
endmodule
