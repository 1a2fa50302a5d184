/* test_chat.c - the chat-template interpreter: Jinja features against outputs that Debian's
 * python3-jinja2 gives for the same sources (configured as Hugging Face: sandbox, trim_blocks,
 * lstrip_blocks, tojson = json.dumps(ensure_ascii=False), strftime_now on 2026-01-01), the
 * message API and named templates, and bad templates: each fails with one clear error naming
 * the line, the limits (loop iterations, recursion, output, memory) included. */
#include "base/t2_err.h"
#include "engine/chat.h"
#include "t2_test.h"

#include <stdlib.h>
#include <string.h>

static const t2_chat_opts opts = {.add_generation_prompt = 1, .year = 2026, .month = 1, .day = 1};

/* Render src with no messages; returns the code, output in *out (malloc'd) on success. */
static int render(const char *src, const t2_chat_opts *o, char **out) {
    t2_chat_template *t = NULL;
    *out = NULL;
    int rc = t2_chat_template_new(&t, src, strlen(src), "t");
    if (rc < 0) return rc;
    size_t n;
    rc = t2_chat_render(t, NULL, 0, o ? o : &opts, out, &n);
    if (rc == 0) T2_CHECK_EQ_INT(n, strlen(*out));
    t2_chat_template_destroy(&t);
    T2_CHECK(t == NULL);
    return rc;
}

/* {source, what python3-jinja2 renders} */
static const char *const features[][2] = {
    {"a\n  {% if true %}\n    b\n  {% endif %}\nc",
     "a\n    b\nc"},
    {"{{- ' x ' -}}  \n {{ 'y' }} {%- if 1 %} z {% endif -%}  !",
     " x y z !"},
    {"{% for i in [3,4,5] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}"
     "{{ loop.length }};{% endfor %}",
     "01TrueFalse3;12FalseFalse3;23FalseTrue3;"},
    {"{{ [1,2,3,4][1:] }}{{ [1,2,3][::-1] }}{{ 'héllo'[1:3] }}{{ 'abc'[-1] }}{{ [1,2,3,4,5]["
     "::2] }}{{ 'abcdef'[4:1:-1] }}",
     "[2, 3, 4][3, 2, 1]élc[1, 3, 5]edc"},
    {"{% set ns = namespace(n=0, s='') %}{% for x in 'abc' %}{% set ns.n = ns.n + 1 %}{% set"
     " ns.s = ns.s ~ x|upper %}{% endfor %}{{ ns.n }} {{ ns.s }}",
     "3 ABC"},
    {"{{ '  t  '|trim }}|{{ [1,2]|length }}|{{ 'ab'|length }}|{{ none|default('d') }}|{{ x|d"
     "efault('u') }}|{{ ''|default('e', true) }}|{{ [1,'a']|join('-') }}|{{ {'a':1}|items|li"
     "st }}|{{ 'x'|capitalize }}",
     "t|2|2|None|u|e|1-a|[('a', 1)]|X"},
    {"{{ [{'r':'u','c':1},{'r':'a','c':2},{'r':'u','c':3}]|selectattr('r','equalto','u')|map"
     "(attribute='c')|list }}{{ [1,2,3]|reject('odd')|list }}{{ ['a','b']|first }}{{ ['a','b"
     "']|last }}",
     "[1, 3][2]ab"},
    {"{{ x is defined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is ite"
     "rable }}{{ 3 is odd }}{{ 1 is number }}{{ true is false }}",
     "FalseTrueTrueTrueTrueTrueTrueFalse"},
    {"{{ 'a' in 'cat' }}{{ 2 in [1,2] }}{{ 'k' in {'k':1} }}{{ 'z' not in 'abc' }}{{ not fal"
     "se }}{{ 1 and 0 }}{{ 0 or 'x' }}",
     "TrueTrueTrueTrueTrue0x"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 1 / 4 }} {{ 2 ** 8 }} {{ 1.5 + 1 }} {{ 'a' "
     "~ 1 ~ none }} {{ 10 / 3 }} {{ 1e-7 }} {{ 123456789012345678.0 }}",
     "3 -4 -2 0.25 256 2.5 a1None 3.3333333333333335 1e-07 1.2345678901234568e+17"},
    {"{{ 'yes' if 1 > 0 else 'no' }}{{ 'a' if false }}|{{ {'b': [1, 2.5, none, true, 'é\"\\n"
     "']}|tojson }}|{{ {'x': {'y': []}}|tojson(indent=2) }}",
     "yes|{\"b\": [1, 2.5, null, true, \"é\\\"\\n\"]}|{\n  \"x\": {\n    \"y\": []\n  }\n}"},
    {"{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bo')"
     " }} {{ greet('Al', punct='?') }}",
     "Hi Bo! Hi Al?"},
    {"{{ 'a,b,,c'.split(',') }}{{ '  x y  '.split() }}{{ 'xxhixx'.strip('x') }}{{ 'abc'.star"
     "tswith('ab') }}{{ 'aXbX'.replace('X','-') }}{{ 'Hello World'.lower() }}{{ {'a':1}.get("
     "'b', 2) }}",
     "['a', 'b', '', 'c']['x', 'y']hiTruea-b-hello world2"},
    {"{% set a, b = [1, 2] %}{{ a }}{{ b }}{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}"
     "={{ v }}{% endfor %}{% for i in [] %}x{% else %}empty{% endfor %}",
     "12x=1y=2empty"},
    {"{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}{% set t %}in"
     "ner {{ 1 + 1 }}{% endset %}[{{ t }}]",
     "2242[inner 2]"},
    {"  {#- c -#}  A {# c2 #}\n  {% if 1 %}B{% endif %}\n{%+ if 1 %}C{% endif %}\n",
     "A BC"},
    {"{{ strftime_now('%d %b %Y') }} {{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ (1, 2)"
     " }} {{ (1,) }} {{ 'x'|tojson }}",
     "01 Jan 2026 [0, 1, 2] [1, 3, 5] (1, 2) (1,) \"x\""},
    {"{{ ['b','A','a','C']|sort }}{{ ['b','A','a','C']|sort(true) }}{{ ['b','A','a']|sort(ca"
     "se_sensitive=true) }}{{ [3,1,2]|sort(reverse=true) }}",
     "['A', 'a', 'b', 'C']['C', 'b', 'A', 'a']['A', 'a', 'b'][3, 2, 1]"},
    {"{{ [{'n':'b','v':1},{'n':'a','v':2}]|sort(attribute='n')|map(attribute='v')|list }}{{ "
     "['a','A','b']|unique|list }}{{ {'b':1,'A':2}|dictsort }}{{ {'b':1,'a':2}|dictsort(by='"
     "value', reverse=true) }}{{ [3,1,2]|min }}{{ ['b','A']|max }}",
     "[2, 1]['a', 'b'][('A', 2), ('b', 1)][('a', 2), ('b', 1)]1b"},
    {"{% for m in [{'role':'user'},{'role':'assistant'}] %}{{ loop.previtem is defined }}{{ "
     "loop.revindex }}{{ m.get('role') }}{{ m.content is defined }}{% endfor %}{{ 'Hello Wor"
     "ld'|title }}{{ 'a-b c'|title }}{{ [1,2,3]|sum }}{{ '7'|int + 1 }}{{ ['x','y']|reverse|"
     "join }}{{ 'abc'|reverse }}",
     "False2userFalseTrue1assistantFalseHello WorldA-B C68yxcba"},
    {"{% for x in 'abcde' %}{{ loop.cycle('odd', 'even') }}{{ x }} {% endfor %}",
     "odda evenb oddc evend odde "},
    {"[{{ 'a\\nb\\n\\nc'|indent }}][{{ 'a\\nb\\n\\nc\\n'|indent(2, true) }}][{{ 'a\\nb\\n\\n"
     "c'|indent('> ', blank=true) }}][{{ ''|indent }}][{{ 'a\\r\\nb\\u2028c'|indent(1) }}]",
     "[a\n    b\n\n    c][  a\n  b\n\n  c\n][a\n> b\n> \n> c][][a\n b\n c]"},
};

static void test_features(void) {
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        char *out = NULL;
        int rc = render(features[i][0], NULL, &out);
        T2_CHECK_MSG(rc == 0, "case %zu: %s", i, t2_err_msg());
        if (rc == 0)
            T2_CHECK_MSG(!strcmp(out, features[i][1]), "case %zu:\n  got  [%s]\n  want [%s]", i,
                         out, features[i][1]);
        free(out);
    }
}

static void test_messages_api(void) {
    t2_chat_template *t = NULL;
    T2_CHECK(t2_chat_template_named(&t, "chatml") == 0);
    if (!t) return;
    t2_chat_msg msgs[] = {{"system", "S"}, {"user", "héllo"}};
    char *out = NULL;
    size_t n = 0;
    T2_CHECK(t2_chat_render(t, msgs, 2, &opts, &out, &n) == 0);
    const char *want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhéllo<|im_end|>\n"
                       "<|im_start|>assistant\n";
    T2_CHECK_MSG(out && !strcmp(out, want), "got [%s]", out ? out : "(null)");
    free(out);
    t2_chat_opts o = opts;
    o.add_generation_prompt = 0;
    T2_CHECK(t2_chat_render(t, msgs, 1, &o, &out, &n) == 0);
    T2_CHECK(out && !strcmp(out, "<|im_start|>system\nS<|im_end|>\n"));
    free(out);
    t2_chat_template_destroy(&t);
    T2_CHECK(t2_chat_template_named(&t, "llama3") == 0);
    T2_CHECK(t && !strcmp(t2_chat_template_bos(t), "<|begin_of_text|>"));
    t2_chat_template_destroy(&t);
    T2_CHECK(t2_chat_template_named(&t, "nope") == T2_ENOTFOUND);
    T2_CHECK(strstr(t2_err_msg(), "chatml") != NULL);
}

static void test_json_api(void) {
    t2_chat_template *t = NULL;
    const char *src = "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }};"
                      "{% endfor %}{{ extra }}{{ add_generation_prompt }}";
    T2_CHECK(t2_chat_template_new(&t, src, strlen(src), "j") == 0);
    if (!t) return;
    const char *conv = "{\"messages\": [{\"role\": \"user\", \"content\": \"a\\u00e9\"}], "
                       "\"extra\": [1, 2.5, null]}";
    char *out = NULL;
    size_t n;
    t2_chat_opts o = opts;
    o.bos_token = "<s>";
    T2_CHECK(t2_chat_render_json(t, conv, strlen(conv), &o, &out, &n) == 0);
    T2_CHECK_MSG(out && !strcmp(out, "<s>user:aé;[1, 2.5, None]True"), "got [%s]", out);
    free(out);
    T2_CHECK(t2_chat_render_json(t, "[1]", 3, &o, &out, &n) == T2_EFORMAT);
    T2_CHECK(t2_chat_render_json(t, "{\"messages\": 3}", 15, &o, &out, &n) == T2_EFORMAT);
    T2_CHECK(t2_chat_render_json(t, "{", 1, &o, &out, &n) == T2_EFORMAT);
    T2_CHECK(out == NULL);
    t2_chat_template_destroy(&t);
}

/* {source, expected code, a fragment the message must contain} */
static const struct {
    const char *src;
    int code;
    const char *msg;
} bad[] = {
    {"{% if x %}abc", T2_EFORMAT, "line 1: unexpected end of template: the block opened on "
                                  "line 1 needs {% endif %}"},
    {"a\n{% for x in y %}\nb", T2_EFORMAT, "the block opened on line 2 needs {% endfor %}"},
    {"{% for x in y %}{% endif %}", T2_EFORMAT, "unexpected 'endif'"},
    {"{% endfor %}", T2_EFORMAT, "unexpected 'endfor' (no block is open)"},
    {"x\n{{ y | frobnicate }}", T2_EFORMAT, "line 2: no filter named 'frobnicate'"},
    {"{{ y is frobnicated }}", T2_EFORMAT, "no test named 'frobnicated'"},
    {"{% frob %}", T2_EFORMAT, "unknown tag 'frob'"},
    {"{% include 'x.jinja' %}", T2_EFORMAT, "tag 'include' is not supported"},
    {"{% for x in y %}{% break %}{% endfor %}", T2_EFORMAT, "tag 'break' is not supported"},
    {"{{ 'abc }}", T2_EFORMAT, "unterminated string"},
    {"{{ x ", T2_EFORMAT, "{{ tag not closed"},
    {"{# no end", T2_EFORMAT, "missing end of comment tag"},
    {"{{ (1 + 2 }}", T2_EFORMAT, "unexpected '}'"},
    {"{{ a b }}", T2_EFORMAT, "expected end of print statement"},
    {"{{ foo() }}", T2_EFORMAT, "'foo' is undefined"},
    {"{{ x.y }}", T2_EFORMAT, "'x' is undefined"},
    {"{{ [1][5] + 1 }}", T2_EFORMAT, "list object has no element 5"},
    {"{{ 'a' + 1 }}", T2_EFORMAT, "unsupported operand types for +: 'str' and 'int'"},
    {"{{ 1 // 0 }}", T2_EFORMAT, "division or modulo by zero"},
    {"{{ raise_exception('Roles must alternate') }}", T2_EINVAL,
     "raise_exception: Roles must alternate"},
    {"{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(10) %}{% endfor %}"
     "{% endfor %}{% endfor %}", T2_ERANGE, "loop iterations"},
    {"{{ range(10000000000) }}", T2_ERANGE, "loop budget"},
    {"{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", T2_ERANGE, "nested deeper than"},
    {"{% set s = 'x' * 500000 %}{% for i in range(100) %}{{ s }}{% endfor %}", T2_ERANGE,
     "the output exceeds"},
    {"{{ 'x' * 100000000000 }}", T2_ERANGE, "loop iterations"},
    {"{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}", T2_ERANGE, "bytes of memory"},
    {"{{ 9223372036854775807 + 1 }}", T2_ERANGE, "integer overflow"},
    {"{{ 12345678901234567890 }}", T2_EFORMAT, "integer 12345678901234567890 is too large"},
    {"{{ 1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111"
     "1111111111111111111111111111111111111111111111111111111111111 }}", T2_EFORMAT,
     "number too long"},
    {"{{ '\\x4' }}", T2_EFORMAT, "truncated \\x escape"},
    {"{{ '\\ud800' }}", T2_EFORMAT, "is not a character"},
};

static void test_bad_templates(void) {
    t2_chat_opts o = opts;
    o.max_output = 16u << 20;
    o.max_memory = 64u << 20;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        int rc = render(bad[i].src, &o, &out);
        const char *msg = t2_err_msg();
        T2_CHECK_MSG(rc == bad[i].code, "case %zu (%s): code %d, want %d: %s", i, bad[i].src, rc,
                     bad[i].code, msg);
        T2_CHECK_MSG(strstr(msg, bad[i].msg) != NULL, "case %zu: message [%s] lacks [%s]", i, msg,
                     bad[i].msg);
        T2_CHECK_MSG(!strncmp(msg, "t: line ", 8), "case %zu: message [%s] names no line", i, msg);
        T2_CHECK(strchr(msg, '\n') == NULL);
        T2_CHECK(out == NULL);
        free(out);
    }
}

static void test_nesting_limit(void) {
    char src[2048] = "{{ ";
    for (int i = 0; i < 300; i++) strcat(src, "(");
    strcat(src, "1");
    for (int i = 0; i < 300; i++) strcat(src, ")");
    strcat(src, " }}");
    char *out = NULL;
    T2_CHECK(render(src, NULL, &out) < 0);
    T2_CHECK(strstr(t2_err_msg(), "nested") != NULL);
    free(out);
    size_t big = T2_CHAT_MAX_SOURCE + 1;
    char *huge = malloc(big + 1);
    if (!huge) return;
    memset(huge, 'a', big);
    huge[big] = 0;
    t2_chat_template *t = NULL;
    T2_CHECK(t2_chat_template_new(&t, huge, big, "big") == T2_ERANGE);
    T2_CHECK(t == NULL);
    free(huge);
}

static void test_real_template_file(void) {
    const char *path = t2_test_asset("tokenizers/qwen3/tokenizer_config.json");
    t2_chat_template *t = NULL;
    T2_CHECK_MSG(t2_chat_template_load(&t, path) == 0, "%s", t2_err_msg());
    if (!t) return;
    T2_CHECK(!strcmp(t2_chat_template_eos(t), "<|im_end|>"));
    t2_chat_msg msgs[] = {{"user", "2+2?"}};
    char *out = NULL;
    size_t n;
    T2_CHECK(t2_chat_render(t, msgs, 1, &opts, &out, &n) == 0);
    T2_CHECK_MSG(out && !strcmp(out, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"),
                 "got [%s]", out ? out : "(null)");
    free(out);
    t2_chat_template_destroy(&t);
}

int main(void) {
    T2_RUN(test_features);
    T2_RUN(test_messages_api);
    T2_RUN(test_json_api);
    T2_RUN(test_bad_templates);
    T2_RUN(test_nesting_limit);
    T2_RUN(test_real_template_file);
    return T2_TEST_END();
}
