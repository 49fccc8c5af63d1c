/* The `sluice` command line. */
#include <stdio.h>

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "sluice: not yet implemented\n");
    return 2;
}
