/* test_msg.c - validation of Tasks (proto/t2_msg.c): prompt, tokens or a conversation, exactly
 * one; prompts and message contents valid UTF-8; roles are names; bounded message counts. */
#include "t2_test.h"

#include "base/t2_err.h"
#include "t2_msg.h"

static int validate_prompt(const char *p, size_t n) {
    T2__Task t = T2__TASK__INIT;
    t.has_prompt = 1;
    t.prompt.data = (uint8_t *)p;
    t.prompt.len = n;
    return t2_msg_validate_task(&t);
}

static void test_prompt_utf8(void) {
    T2_CHECK_EQ_INT(validate_prompt("caf\xc3\xa9 \xe2\x82\xac", 9), 0);
    T2_CHECK_EQ_INT(validate_prompt("", 0), 0);
    T2_CHECK(validate_prompt("caf\xc3", 4) < 0);              /* truncated sequence */
    T2_CHECK(strstr(t2_err_msg(), "task.prompt is not valid UTF-8") != NULL);
    T2_CHECK(validate_prompt("\xff", 1) < 0);                 /* never valid */
    T2_CHECK(validate_prompt("\xc0\xaf", 2) < 0);             /* overlong */
    T2_CHECK(validate_prompt("\xed\xa0\x80", 3) < 0);         /* surrogate */
}

static void test_chat(void) {
    T2__ChatMessage a = T2__CHAT_MESSAGE__INIT, b = T2__CHAT_MESSAGE__INIT;
    a.role = "system";
    a.content = "Be brief.";
    b.role = "user";
    b.content = "";
    T2__ChatMessage *msgs[2] = {&a, &b};
    T2__Task t = T2__TASK__INIT;
    t.n_messages = 2;
    t.messages = msgs;
    T2_CHECK_EQ_INT(t2_msg_validate_task(&t), 0);
    t.has_add_generation_prompt = 1;
    T2_CHECK_EQ_INT(t2_msg_validate_task(&t), 0);

    t.has_prompt = 1; /* prompt and messages */
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "exactly one of prompt, tokens and messages") != NULL);
    t.has_prompt = 0;

    b.role = "us er";
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "task.messages[1].role") != NULL);
    b.role = "user";
    b.content = "\xe2\x82";
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "task.messages[1].content is not valid UTF-8") != NULL);
    b.content = NULL;
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "task.messages[1].content missing") != NULL);
    b.content = "hi";

    t.n_messages = T2_MSG_CHAT_MAX + 1; /* checked before the array is read */
    T2_CHECK(t2_msg_validate_task(&t) < 0);
    T2_CHECK(strstr(t2_err_msg(), "at most") != NULL);

    T2__Task u = T2__TASK__INIT; /* add_generation_prompt alone */
    u.has_prompt = 1;
    u.prompt.data = (uint8_t *)"x";
    u.prompt.len = 1;
    u.has_add_generation_prompt = 1;
    T2_CHECK(t2_msg_validate_task(&u) < 0);
    T2_CHECK(strstr(t2_err_msg(), "add_generation_prompt without messages") != NULL);
}

static void test_nothing(void) {
    T2__Task t = T2__TASK__INIT;
    T2_CHECK(t2_msg_validate_task(&t) < 0);
}

int main(void) {
    T2_RUN(test_prompt_utf8);
    T2_RUN(test_chat);
    T2_RUN(test_nothing);
    return T2_TEST_END();
}
