# train_data.sh - sourced by the training script tests: make_train_text FILE writes a small,
# deterministic training text (blank-line-separated documents of simple sentences).
make_train_text() {
    awk 'BEGIN {
        split("the cat sat on a mat and dog ran to big red ball in sun", w, " ");
        s = 12345;
        for (d = 0; d < 300; d++) {
            s = (s * 1103515245 + 12345) % 2147483648; n = 4 + s % 9; line = "";
            for (i = 0; i < n; i++) {
                s = (s * 1103515245 + 12345) % 2147483648;
                line = line (i ? " " : "") w[1 + int(s / 65536) % 16];
            }
            print line; print "";
        }
    }' > "$1"
}
