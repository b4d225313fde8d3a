/*
 * elax_plan._json_numbers: is this text a JSON array of numbers within float32 range?
 *
 * The NDJSON fast path (elax_plan/apply/rows.py) passes a vector's source text through to the
 * request body. It needs to know the text is a JSON array of n numbers, each within float32
 * range, but not their values. Parsing 768 numbers into doubles costs more than the rest of
 * the row; checking their grammar and bounding their magnitude from the digit and exponent
 * counts costs a few microseconds.
 *
 * float32_array_length(text) is the element count when that is certain, else -1 -- and -1 is
 * never wrong, only slower: the caller then takes the full decode, which finds the exact
 * reason (or accepts the row). Certain means:
 *
 *   - the text is `[` number (`,` number)* `]` with JSON whitespace around the tokens
 *     (RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?), or `[]` (count 0);
 *   - every number is below 10^38 in magnitude (float32's largest finite value is about
 *     3.4e38), proven from its form: with k digits before the point (k = 0 for a leading 0)
 *     and exponent e, the magnitude is below 10^(k+e), so k + e <= 38 is enough. Numbers that
 *     fail it (1e39, but also 0e99) are "not certain".
 *
 * No conversion is done, so no rounding question arises: a number that is accepted is within
 * float32 range whatever its digits. tests/apply/test_json_numbers.py checks the verdicts
 * against orjson on generated and mutated texts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Exponents are accumulated up to this and no further: larger ones fail the bound anyway
 * (positive) or only make the number smaller (negative), and the sum cannot overflow. */
#define EXPONENT_CAP 100000

static inline int
is_digit(unsigned char c)
{
    return (unsigned char)(c - '0') < 10;
}

static inline const unsigned char *
skip_space(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++;
    }
    return p;
}

/* One number at p: the end of it, or NULL if it is not a JSON number within the bound. */
static inline const unsigned char *
bounded_number(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '-') {
        p++;
    }
    if (p == end) {
        return NULL;
    }
    Py_ssize_t magnitude; /* digits before the point, leading zero excluded */
    if (*p == '0') {
        p++;
        magnitude = 0;
    }
    else if (is_digit(*p)) {
        const unsigned char *first = p;
        do {
            p++;
        } while (p < end && is_digit(*p));
        magnitude = p - first;
    }
    else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        const unsigned char *first = p;
        while (p < end && is_digit(*p)) {
            p++;
        }
        if (p == first) {
            return NULL;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int negative = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            negative = *p == '-';
            p++;
        }
        const unsigned char *first = p;
        Py_ssize_t exponent = 0;
        while (p < end && is_digit(*p)) {
            if (exponent < EXPONENT_CAP) {
                exponent = exponent * 10 + (*p - '0');
            }
            p++;
        }
        if (p == first) {
            return NULL;
        }
        magnitude += negative ? -exponent : exponent;
    }
    return magnitude <= 38 ? p : NULL;
}

static Py_ssize_t
array_length(const unsigned char *p, const unsigned char *end)
{
    p = skip_space(p, end);
    if (p == end || *p != '[') {
        return -1;
    }
    p = skip_space(p + 1, end);
    Py_ssize_t count = 0;
    if (p < end && *p == ']') {
        p++;
    }
    else {
        for (;;) {
            p = bounded_number(p, end);
            if (p == NULL) {
                return -1;
            }
            count++;
            p = skip_space(p, end);
            if (p == end) {
                return -1;
            }
            if (*p == ']') {
                p++;
                break;
            }
            if (*p != ',') {
                return -1;
            }
            p = skip_space(p + 1, end);
        }
    }
    return skip_space(p, end) == end ? count : -1;
}

PyDoc_STRVAR(float32_array_length_doc,
             "float32_array_length(text, /)\n--\n\n"
             "The element count of `text` (a bytes-like object) if it is certainly a JSON array "
             "of numbers that all lie within float32 range, else -1 (not certain: decode it).");

static PyObject *
float32_array_length(PyObject *module, PyObject *text)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(text, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = view.buf;
    Py_ssize_t count = array_length(p, p + view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(count);
}

static PyMethodDef methods[] = {
    {"float32_array_length", float32_array_length, METH_O, float32_array_length_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "elax_plan._json_numbers",
    "Is this text a JSON array of numbers within float32 range? (without parsing them)",
    0,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__json_numbers(void)
{
    return PyModule_Create(&module_def);
}
