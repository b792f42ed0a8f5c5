/* classify.c: the smallest useful embedding of rectify.
     classify MODEL IMAGE...   prints "IMAGE LABEL PROBABILITY", the top-1 class
   Build: cc classify.c $(pkg-config --cflags --libs rectify) */
#include <stdio.h>
#include <stdlib.h>

#include <rectify.h>

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL IMAGE...\n", argv[0]); return 2; }
    rectify_error err;
    rectify_model *model = NULL;
    rectify_session *session = NULL;
    size_t n = 0;
    float *input = NULL;
    int status = 1;
    if (rectify_model_load(argv[1], NULL, &model, &err) ||
        rectify_session_create(model, NULL, &session, &err)) goto done;
    n = rectify_model_input_size(model);
    if (!(input = malloc(n * sizeof *input))) { fprintf(stderr, "out of memory\n"); goto done; }
    for (int i = 2; i < argc; i++) {
        rectify_tensor out;
        if (rectify_image_load(model, argv[i], input, n, &err) ||
            rectify_session_run(session, input, n, &err)) goto done;
        rectify_session_output(session, 0, &out); /* shape [1, classes] */
        int best = 0;
        for (int c = 1; c < out.elements; c++)
            if (out.data[c] > out.data[best]) best = c;
        const char *label = rectify_model_label(model, best); /* NULL without labels */
        if (label) printf("%s %s %.4f\n", argv[i], label, out.data[best]);
        else printf("%s %d %.4f\n", argv[i], best, out.data[best]);
    }
    status = 0;
done:
    if (status && err.status) fprintf(stderr, "classify: %s\n", err.message);
    free(input);
    rectify_session_destroy(session);
    rectify_model_destroy(model);
    return status;
}
