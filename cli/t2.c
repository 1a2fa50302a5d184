/* placeholder: the CLI is being written */
#include <stdio.h>
int main(void) { puts("t2"); return 0; }
