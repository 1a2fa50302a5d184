/* fuzz_proto.c - arbitrary bytes through the wire validation layer (proto/t2_msg.c).
 *
 * Each input is decoded as a whole t2.Msg envelope (t2_msg_decode: unpack + version + body
 * checks) and, separately, as every body type on its own (unpack with that type's descriptor,
 * then t2_msg_validate_body). Nothing may crash, leak or trip a sanitizer; a message that
 * validates must still validate after packing it again (the router forwards what it accepts).
 * Seeds: fuzz/corpus/fuzz_proto/ (one valid message of each kind, a few broken ones). */
#include "t2_msg.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    T2__Msg *m = NULL;
    t2_msg_ids ids;
    if (t2_msg_decode(data, size, &m, &ids) == 0) {
        uint8_t *buf;
        size_t len;
        if (t2_msg_pack_alloc(m, &buf, &len) == 0) {
            T2__Msg *again = NULL;
            if (t2_msg_decode(buf, len, &again, NULL) != 0) __builtin_trap(); /* accepted once: always */
            if (t2_msg_request_id(again) != ids.request_id || t2_msg_job_id(again) != ids.job_id)
                __builtin_trap();
            t2_msg_free(again);
            free(buf);
        }
        t2_msg_free(m);
    }
    for (int bc = T2__MSG__BODY_REQUEST; bc <= T2__MSG__BODY_STATS; bc++) {
        const ProtobufCMessageDescriptor *d = t2_msg_body_descriptor(bc);
        ProtobufCMessage *b = protobuf_c_message_unpack(d, NULL, size, data);
        if (!b) continue;
        (void)t2_msg_validate_body(bc, b);
        protobuf_c_message_free_unpacked(b, NULL);
    }
    return 0;
}
