/* replay.c: a main() for a fuzz harness without libFuzzer, so that meson
   builds each harness with the project's compiler (and, in the sanitizer
   build, address and undefined sanitizers) and replays inputs through it:
   every reproducer in tests/fuzz/crashes/ and the seed corpora. Arguments
   are files or folders (read recursively). A harness aborts on any broken
   promise; otherwise this prints how many inputs it replayed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replayed;

static void replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: no such file\n", path);
        exit(1);
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char child[4096];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            replay(child);
        }
        if (d) closedir(d);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", path); exit(1); }
    unsigned char *data = malloc((size_t)st.st_size + 1);
    size_t n = fread(data, 1, (size_t)st.st_size, f);
    fclose(f);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    replayed++;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) replay(argv[i]);
    printf("replayed %d inputs\n", replayed);
    return 0;
}
