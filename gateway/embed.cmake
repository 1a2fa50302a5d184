# embed.cmake - write IN as a C array gw_chat_html[] into OUT (cmake -DIN=... -DOUT=... -P).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* generated from gateway/chat.html by gateway/embed.cmake: do not edit */\n"
  "const unsigned char gw_chat_html[] = {\n${body}0};\n"
  "const unsigned long gw_chat_html_len = ${len};\n")
