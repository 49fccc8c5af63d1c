/* Envelope and handshake message (un)packing over frames, with validation of what arrives
 * from a peer: nothing from the network reaches a handler unless it passed here. */
#include "rpc/message.h"

#include <sluice/error.h>
#include <string.h>

#include "core/alloc.h"
#include "rpc/frame.h"

static void *pb_alloc(void *data, size_t size) {
    return sl_malloc(size);
}

static void pb_free(void *data, void *ptr) {
    sl_free(ptr);
}

ProtobufCAllocator sl__rpc_pb_allocator = {pb_alloc, pb_free, NULL};

int sl_rpc_frame_pack(uint8_t kind, const ProtobufCMessage *msg, uint32_t max_frame, uint8_t **out,
                      size_t *out_len) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > (max_frame ? max_frame : SL_RPC_DEFAULT_MAX_FRAME))
        return SL_ERANGE;
    uint8_t *buf = sl_malloc(SL_RPC_FRAME_HEADER_SIZE + len);
    if (!buf)
        return SL_ENOMEM;
    sl_rpc_frame_header(buf, kind, (uint32_t)len);
    size_t packed = protobuf_c_message_pack(msg, buf + SL_RPC_FRAME_HEADER_SIZE);
    if (packed != len) { /* protobuf-c promises equality; a mismatch is a bug in a message */
        sl_free(buf);
        return SL_EPROTO;
    }
    *out = buf;
    *out_len = SL_RPC_FRAME_HEADER_SIZE + len;
    return 0;
}

static int known_body(int c) {
    return c >= SLUICE__RPC__ENVELOPE__BODY_ERROR && c <= SLUICE__RPC__ENVELOPE__BODY_SAVEPOINT_RESULT;
}

/* protobuf-c accepts an overlong encoding of the invalid field number 0 (bytes 80 00) and keeps
 * it as an unknown field, but re-packs it as 00, which it then refuses: such a message could
 * not be forwarded. Found by fuzz_rpc_message; the walk covers every nested message. */
static int has_field_zero(const ProtobufCMessage *m, int depth) {
    if (depth > 32) /* sluice.proto has no recursive messages; this is only a guard */
        return 1;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (arr[j] && has_field_zero(arr[j], depth + 1))
                    return 1;
        } else {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
            if (sub && has_field_zero(sub, depth + 1))
                return 1;
        }
    }
    return 0;
}

int sl_rpc_msg_validate(const sl_rpc_msg_t *msg, const char **what) {
    const char *why = NULL;
    if (msg->kind != SLUICE__RPC__KIND__KIND_ONEWAY && msg->kind != SLUICE__RPC__KIND__KIND_REQUEST &&
        msg->kind != SLUICE__RPC__KIND__KIND_RESPONSE)
        why = "unknown envelope kind";
    else if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY__NOT_SET)
        why = "envelope without a body";
    else if (!known_body((int)msg->body_case))
        why = "envelope with an unknown body";
    else if (msg->kind != SLUICE__RPC__KIND__KIND_ONEWAY && msg->correlation_id == 0)
        why = "request or response without a correlation id";
    else if (has_field_zero(&msg->base, 0))
        why = "invalid field number 0";
    if (what)
        *what = why;
    return why ? SL_EPROTO : 0;
}

int sl_rpc_msg_unpack(const uint8_t *data, size_t len, sl_rpc_msg_t **out, const char **what) {
    sl_rpc_msg_t *msg = sluice__rpc__envelope__unpack(&sl__rpc_pb_allocator, len, data);
    if (!msg) {
        if (what)
            *what = "not a valid protobuf Envelope";
        return SL_EPROTO;
    }
    int rc = sl_rpc_msg_validate(msg, what);
    if (rc < 0) {
        sl_rpc_msg_free(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

void sl_rpc_msg_free(sl_rpc_msg_t *msg) {
    if (msg)
        sluice__rpc__envelope__free_unpacked(msg, &sl__rpc_pb_allocator);
}

const char *sl_rpc_body_name(int body_case) {
    static const char *names[] = {"error", "heartbeat", "register_task_manager", "registration_ack",
                                  "slot_report", "request_slot", "offer_slots", "offer_slots_ack",
                                  "submit_task", "cancel_task", "task_state_update", "submit_job",
                                  "job_status", "list_jobs", "job_list", "cancel_job",
                                  "free_slot", "disconnect", "ack", "echo", "deploy_job",
                                  "trigger_checkpoint", "notify_checkpoint_complete", "acknowledge_checkpoint",
                                  "trigger_savepoint", "savepoint_result"};
    _Static_assert(sizeof names / sizeof names[0] ==
                       SLUICE__RPC__ENVELOPE__BODY_SAVEPOINT_RESULT - SLUICE__RPC__ENVELOPE__BODY_ERROR + 1,
                   "a name per body");
    if (body_case == SLUICE__RPC__ENVELOPE__BODY__NOT_SET)
        return "none";
    if (!known_body(body_case))
        return "unknown";
    return names[body_case - SLUICE__RPC__ENVELOPE__BODY_ERROR];
}

void sl_rpc_msg_set_error(sl_rpc_msg_t *env, Sluice__Rpc__Error *err, int code, const char *message) {
    sluice__rpc__error__init(err);
    err->code = code;
    err->message = (char *)(message ? message : "");
    env->body_case = SLUICE__RPC__ENVELOPE__BODY_ERROR;
    env->error = err;
}
