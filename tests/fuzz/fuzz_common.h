/*
 * fuzz_common.h - the corpus replay driver shared by the tests/fuzz targets.
 *
 * Every fuzz_<name>.c defines LLVMFuzzerTestOneInput() and includes this
 * header once.  Built normally (CTest), the header supplies main(): it runs
 * the target's built-in seeds, then every regular file of each directory
 * (or each file) named on the command line, so past crash inputs are
 * re-checked on every test run.  Built with -DHOLDMX_LIBFUZZER (a manual
 * clang -fsanitize=fuzzer build), libFuzzer supplies main() instead and
 * only the seed/target code is used.  The driver owns nothing after it
 * returns: each input is read into a heap buffer of exactly its size (so
 * ASan sees reads past the end) and freed after the call.
 */
#ifndef HM_FUZZ_COMMON_H
#define HM_FUZZ_COMMON_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* FUZZ_SEEDS - marks a target's seed table (unused when libFuzzer supplies main). */
#define FUZZ_SEEDS __attribute__((unused))

#define FUZZ_FILE_MAX (1024 * 1024) /* corpus files larger than this are refused */
#define FUZZ_DIR_MAX  10000         /* files replayed per directory at most */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef HOLDMX_LIBFUZZER

/* fuzz_run_copy - run one input from an exact-size heap copy. */
static void fuzz_run_copy(const void *data, size_t size)
{
    uint8_t *copy = malloc(size > 0 ? size : 1);

    if (copy == NULL) {
        fprintf(stderr, "fuzz: out of memory\n");
        exit(2);
    }
    if (size > 0)
        memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

/* fuzz_run_file - replay one corpus file; -1 if it cannot be read. */
static int fuzz_run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    buf = malloc(FUZZ_FILE_MAX);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, FUZZ_FILE_MAX, f);
    if (ferror(f) || !feof(f)) {
        fprintf(stderr, "%s: unreadable or over %d bytes\n", path, FUZZ_FILE_MAX);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    fuzz_run_copy(buf, n);
    free(buf);
    return 0;
}

/* fuzz_run_path - replay a file, or every regular file in a directory; count in *n. */
static int fuzz_run_path(const char *path, int *n)
{
    struct stat sb;
    struct dirent *de;
    DIR *d;
    int rc = 0, seen = 0;

    if (stat(path, &sb) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        (*n)++;
        return fuzz_run_file(path);
    }
    if ((d = opendir(path)) == NULL) {
        perror(path);
        return -1;
    }
    while ((de = readdir(d)) != NULL && seen < FUZZ_DIR_MAX) {
        char file[4096];

        if (de->d_name[0] == '.')
            continue;
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        if (stat(file, &sb) < 0 || !S_ISREG(sb.st_mode))
            continue;
        seen++;
        (*n)++;
        if (fuzz_run_file(file) < 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

/* fuzz_main - seeds, then every path argument; exit status 1 if a path failed. */
static int fuzz_main(int argc, char **argv, const char *const *seeds, size_t nseeds)
{
    int i, n = 0, rc = 0;
    size_t k;

    for (k = 0; k < nseeds; k++)
        fuzz_run_copy(seeds[k], strlen(seeds[k]));
    for (i = 1; i < argc; i++)
        if (fuzz_run_path(argv[i], &n) < 0)
            rc = 1;
    printf("%s: %zu seeds and %d corpus files replayed\n", argv[0], nseeds, n);
    return rc;
}

#define FUZZ_MAIN(seeds)                                                                           \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return fuzz_main(argc, argv, seeds, sizeof(seeds) / sizeof(seeds[0]));                     \
    }

#else
#define FUZZ_MAIN(seeds)
#endif

/* fuzz_abort - an invariant broke: say which and crash so the fuzzer keeps the input. */
#define fuzz_assert(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
