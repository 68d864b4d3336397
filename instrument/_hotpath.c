/* The RPC interceptors' hot path in C: span ids, the span's fields, KPI counters and
 * the plain span record.
 *
 * Why: a traced echo call spends ~20 us of CPU per side in Python on work that is
 * bookkeeping (draw ids, format a traceparent, make a span, count the call, queue a
 * tuple, encode it); untraced the whole call costs ~23 us, so tracing halved the
 * service's throughput (benchmarks/RESULTS.md). Here that work is a few C calls.
 *
 * What stays in Python: everything that is not the common case. A call with baggage,
 * a retry attempt, a version or group, governance events, an unknown call shape, a
 * parent span that is not ours, a malformed or non-00 traceparent, a failure: the
 * fast path answers None (begin) or hands the span back to Python (end), and the
 * reference implementation in instrument/_interceptors.py does the rest. Every
 * function here runs under the GIL and never releases it, so each is atomic with
 * respect to other Python threads: the KPI counters need no lock of their own.
 *
 * The pure-Python fallback (CALLSCOPE_NATIVE=0, or no compiler at install) gives the
 * same records and counts; tests run both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* -- interned names and constants ------------------------------------------------- */
static PyObject *s_service, *s_method, *s_peer, *s_local, *s_attempt, *s_version, *s_group,
    *s_oneway, *s_events, *s_attachments;
static PyObject *s_traceparent, *s_tracestate, *s_baggage, *s_caller_key, *s_ok, *s_empty;
static PyObject *empty_tuple;

static long long wall_offset_ns = 0; /* wall clock - monotonic clock, set by sync_clock() */
static int schema_version = 1;

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* what time.perf_counter_ns reads on Linux */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* -- ids: xoshiro256** seeded from the kernel, reseeded in forked children ---------- */
static uint64_t rng[4];

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(void) {
    uint64_t seed[4];
    if (getrandom(seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                     ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&ts;
        for (int i = 0; i < 4; i++) seed[i] = splitmix(&x);
    }
    memcpy(rng, seed, sizeof seed);
    if (!(rng[0] | rng[1] | rng[2] | rng[3])) rng[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(void) {
    uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

static uint64_t nonzero_draw(void) {
    uint64_t v;
    do v = rng_next(); while (v == 0);
    return v;
}

static const char HEX[] = "0123456789abcdef";

static void put_hex(char *out, uint64_t v) {
    for (int i = 15; i >= 0; i--, v >>= 4) out[i] = HEX[v & 15];
}

static PyObject *hex_str(uint64_t hi, uint64_t lo, int words) {
    PyObject *s = PyUnicode_New(16 * words, 127);
    if (s == NULL) return NULL;
    char *p = (char *)PyUnicode_1BYTE_DATA(s);
    if (words == 2) {
        put_hex(p, hi);
        put_hex(p + 16, lo);
    } else {
        put_hex(p, lo);
    }
    return s;
}

/* A trace id as its 32 hex digits, never all zero; *low gets its low 64 bits (what
 * TraceIdRatio samples by). */
static PyObject *new_trace_hex(uint64_t *low) {
    uint64_t hi = rng_next(), lo = rng_next();
    while (!(hi | lo)) lo = rng_next();
    *low = lo;
    return hex_str(hi, lo, 2);
}

/* -- SpanCore: the fields every span has, as C members ------------------------------ */
typedef struct {
    PyObject_HEAD
    PyObject *site, *trace_hex, *span_hex, *parent_hex, *trace_state, *attributes, *events,
        *status, *error_code, *error_message, *kpi, *token, *entry, *context;
    long long t0, start_ns, duration_ns;
    char sampled;
} SpanCore;

static PyTypeObject SpanCoreType;

#define SPAN_OBJECTS(X)                                                                  \
    X(site) X(trace_hex) X(span_hex) X(parent_hex) X(trace_state) X(attributes) X(events) \
        X(status) X(error_code) X(error_message) X(kpi) X(token) X(entry) X(context)

static PyObject *SpanCore_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    SpanCore *self = (SpanCore *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->site = Py_NewRef(Py_None);
    self->trace_hex = Py_NewRef(s_empty);
    self->span_hex = Py_NewRef(s_empty);
    self->parent_hex = Py_NewRef(s_empty);
    self->trace_state = Py_NewRef(s_empty);
    self->attributes = Py_NewRef(Py_None);
    self->events = Py_NewRef(Py_None);
    self->status = Py_NewRef(s_ok);
    self->error_code = Py_NewRef(s_empty);
    self->error_message = Py_NewRef(s_empty);
    self->kpi = Py_NewRef(Py_None);
    self->token = Py_NewRef(Py_None);
    self->entry = Py_NewRef(Py_None);
    self->context = Py_NewRef(Py_None);
    self->duration_ns = -1;
    self->sampled = 1;
    return (PyObject *)self;
}

/* tp_traverse and tp_clear of a type from the list of its object fields */
#define GC_FUNCTIONS(Type, FIELDS)                                      \
    static int Type##_traverse(Type *self, visitproc visit, void *arg) { \
        FIELDS(GC_VISIT)                                                \
        return 0;                                                       \
    }                                                                   \
    static int Type##_clear(Type *self) {                               \
        FIELDS(GC_CLEAR)                                                \
        return 0;                                                       \
    }
#define GC_VISIT(f) Py_VISIT(self->f);
#define GC_CLEAR(f) Py_CLEAR(self->f);

GC_FUNCTIONS(SpanCore, SPAN_OBJECTS)

static void SpanCore_dealloc(SpanCore *self) {
    PyObject_GC_UnTrack(self);
    SpanCore_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef SpanCore_members[] = {
    {"site", T_OBJECT, offsetof(SpanCore, site), 0, NULL},
    {"trace_hex", T_OBJECT, offsetof(SpanCore, trace_hex), 0, NULL},
    {"span_hex", T_OBJECT, offsetof(SpanCore, span_hex), 0, NULL},
    {"parent_hex", T_OBJECT, offsetof(SpanCore, parent_hex), 0, NULL},
    {"trace_state", T_OBJECT, offsetof(SpanCore, trace_state), 0, NULL},
    {"attributes", T_OBJECT, offsetof(SpanCore, attributes), 0, NULL},
    {"events", T_OBJECT, offsetof(SpanCore, events), 0, NULL},
    {"status", T_OBJECT, offsetof(SpanCore, status), 0, NULL},
    {"error_code", T_OBJECT, offsetof(SpanCore, error_code), 0, NULL},
    {"error_message", T_OBJECT, offsetof(SpanCore, error_message), 0, NULL},
    {"kpi", T_OBJECT, offsetof(SpanCore, kpi), 0, NULL},
    {"token", T_OBJECT, offsetof(SpanCore, token), 0, NULL},
    {"entry", T_OBJECT, offsetof(SpanCore, entry), 0, NULL},
    {"_context", T_OBJECT, offsetof(SpanCore, context), 0, NULL},
    {"t0", T_LONGLONG, offsetof(SpanCore, t0), 0, NULL},
    {"start_ns", T_LONGLONG, offsetof(SpanCore, start_ns), 0, NULL},
    {"duration_ns", T_LONGLONG, offsetof(SpanCore, duration_ns), 0, NULL},
    {"sampled", T_BOOL, offsetof(SpanCore, sampled), 0, NULL},
    {NULL},
};

static PyTypeObject SpanCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "instrument._hotpath.SpanCore",
    .tp_doc = PyDoc_STR("The fields every span has, as C members (instrument.Span's base)."),
    .tp_basicsize = sizeof(SpanCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = SpanCore_new,
    .tp_dealloc = (destructor)SpanCore_dealloc,
    .tp_traverse = (traverseproc)SpanCore_traverse,
    .tp_clear = (inquiry)SpanCore_clear,
    .tp_members = SpanCore_members,
};

/* -- CallStats: one KPI key's counters and latency histogram ------------------------ */
#define MAX_BOUNDS 63

typedef struct {
    PyObject_HEAD
    long long in_flight, count, errors, max_ns;
    int n_bounds;
    long long bounds[MAX_BOUNDS];
    long long buckets[MAX_BOUNDS + 1];
} CallStats;

static PyTypeObject CallStatsType;

static int read_bounds(PyObject *bounds, CallStats *stats) {
    PyObject *seq = PySequence_Fast(bounds, "bounds must be a sequence of integers (ns)");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_BOUNDS) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d latency bounds, got %zd", MAX_BOUNDS, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        stats->bounds[i] = v;
    }
    stats->n_bounds = (int)n;
    Py_DECREF(seq);
    return 0;
}

static PyObject *CallStats_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *bounds;
    if (!PyArg_ParseTuple(args, "O:CallStats", &bounds)) return NULL;
    CallStats *self = (CallStats *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    if (read_bounds(bounds, self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static inline void stats_end(CallStats *s, long long ns, int error) {
    int i = 0, n = s->n_bounds;
    while (i < n && s->bounds[i] < ns) i++; /* bisect_left over a dozen bounds */
    s->in_flight--;
    s->count++;
    s->buckets[i]++;
    if (error) s->errors++;
    if (ns > s->max_ns) s->max_ns = ns;
}

static PyObject *CallStats_end(CallStats *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "end(duration_ns, error)");
        return NULL;
    }
    long long ns = PyLong_AsLongLong(args[0]);
    if (ns == -1 && PyErr_Occurred()) return NULL;
    int error = PyObject_IsTrue(args[1]);
    if (error < 0) return NULL;
    stats_end(self, ns, error);
    Py_RETURN_NONE;
}

static PyObject *buckets_list(CallStats *self) {
    PyObject *list = PyList_New(self->n_bounds + 1);
    if (list == NULL) return NULL;
    for (int i = 0; i <= self->n_bounds; i++) {
        PyObject *v = PyLong_FromLongLong(self->buckets[i]);
        if (v == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

/* The window's counts, then the window reset: (count, errors, in_flight, max_ns, buckets). */
static PyObject *CallStats_take(CallStats *self, PyObject *unused) {
    PyObject *buckets = buckets_list(self);
    if (buckets == NULL) return NULL;
    PyObject *row = Py_BuildValue("(LLLLN)", self->count, self->errors, self->in_flight,
                                  self->max_ns, buckets);
    if (row == NULL) return NULL;
    self->count = self->errors = self->max_ns = 0;
    memset(self->buckets, 0, sizeof self->buckets);
    return row;
}

static PyMethodDef CallStats_methods[] = {
    {"end", (PyCFunction)(void (*)(void))CallStats_end, METH_FASTCALL,
     "end(duration_ns, error): a call finished."},
    {"take", (PyCFunction)CallStats_take, METH_NOARGS,
     "(count, errors, in_flight, max_ns, buckets) of the window, and a new window."},
    {NULL},
};

static PyMemberDef CallStats_members[] = {
    {"in_flight", T_LONGLONG, offsetof(CallStats, in_flight), READONLY, NULL},
    {"count", T_LONGLONG, offsetof(CallStats, count), READONLY, NULL},
    {"errors", T_LONGLONG, offsetof(CallStats, errors), READONLY, NULL},
    {"max_ns", T_LONGLONG, offsetof(CallStats, max_ns), READONLY, NULL},
    {NULL},
};

static PyTypeObject CallStatsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "instrument._hotpath.CallStats",
    .tp_doc = PyDoc_STR("CallStats(bounds_ns): one KPI key's call counters and histogram."),
    .tp_basicsize = sizeof(CallStats),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = CallStats_new,
    .tp_methods = CallStats_methods,
    .tp_members = CallStats_members,
};

/* stats_begin(stats, key, bounds_ns): stats[key] (made when missing), one more in flight. */
static PyObject *get_stats(PyObject *stats, PyObject *key, PyObject *bounds) {
    PyObject *s = PyDict_GetItemWithError(stats, key);
    if (s != NULL) {
        if (!Py_IS_TYPE(s, &CallStatsType)) {
            PyErr_SetString(PyExc_TypeError, "the KPI table holds a foreign object");
            return NULL;
        }
        return Py_NewRef(s);
    }
    if (PyErr_Occurred()) return NULL;
    s = PyObject_CallOneArg((PyObject *)&CallStatsType, bounds);
    if (s == NULL) return NULL;
    if (PyDict_SetItem(stats, key, s) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return s;
}

static PyObject *mod_stats_begin(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "stats_begin(stats: dict, key, bounds_ns)");
        return NULL;
    }
    PyObject *s = get_stats(args[0], args[1], args[2]);
    if (s != NULL) ((CallStats *)s)->in_flight++;
    return s;
}

/* take_all(stats): [(key, count, errors, in_flight, max_ns, buckets)] of every key that saw
 * calls or has some in flight; keys idle for the whole window are forgotten. Atomic. */
static PyObject *mod_take_all(PyObject *m, PyObject *stats) {
    if (!PyDict_CheckExact(stats)) {
        PyErr_SetString(PyExc_TypeError, "take_all(stats: dict)");
        return NULL;
    }
    PyObject *rows = PyList_New(0), *idle = PyList_New(0);
    if (rows == NULL || idle == NULL) goto fail;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(stats, &pos, &key, &value)) {
        if (!Py_IS_TYPE(value, &CallStatsType)) continue;
        CallStats *s = (CallStats *)value;
        if (!s->count && !s->in_flight) {
            if (PyList_Append(idle, key) < 0) goto fail;
            continue;
        }
        PyObject *taken = CallStats_take(s, NULL);
        if (taken == NULL) goto fail;
        PyObject *row = PyTuple_Pack(6, key, PyTuple_GET_ITEM(taken, 0), PyTuple_GET_ITEM(taken, 1),
                                     PyTuple_GET_ITEM(taken, 2), PyTuple_GET_ITEM(taken, 3),
                                     PyTuple_GET_ITEM(taken, 4));
        Py_DECREF(taken);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            goto fail;
        }
        Py_DECREF(row);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(idle); i++) {
        if (PyDict_DelItem(stats, PyList_GET_ITEM(idle, i)) < 0) goto fail;
    }
    Py_DECREF(idle);
    return rows;
fail:
    Py_XDECREF(rows);
    Py_XDECREF(idle);
    return NULL;
}

/* -- the plain span record ------------------------------------------------------------ */
static inline long long floor_div_1000(long long v) {
    long long q = v / 1000;
    return (v % 1000 < 0) ? q - 1 : q;
}

static int utf8_of(PyObject *o, const char **p, Py_ssize_t *n) {
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "span record fields must be str");
        return -1;
    }
    *p = PyUnicode_AsUTF8AndSize(o, n);
    return *p == NULL ? -1 : 0;
}

#define OK_FIELDS "\"status\":\"OK\",\"error_code\":\"\",\"error_message\":\"\",\"events\":[],"

/* encode_ended(item): the JSON record of an Ended tuple (instrument._span.Ended). */
static PyObject *mod_encode_ended(PyObject *m, PyObject *item) {
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 7) {
        PyErr_SetString(PyExc_TypeError, "encode_ended expects a 7-tuple (Ended)");
        return NULL;
    }
    const char *fields, *trace, *span, *parent;
    Py_ssize_t nf, nt, ns, np;
    if (utf8_of(PyTuple_GET_ITEM(item, 0), &fields, &nf) < 0 ||
        utf8_of(PyTuple_GET_ITEM(item, 1), &trace, &nt) < 0 ||
        utf8_of(PyTuple_GET_ITEM(item, 2), &span, &ns) < 0 ||
        utf8_of(PyTuple_GET_ITEM(item, 3), &parent, &np) < 0)
        return NULL;
    long long start = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 4));
    if (start == -1 && PyErr_Occurred()) return NULL;
    long long duration = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 5));
    if (duration == -1 && PyErr_Occurred()) return NULL;
    char head[256];
    int nh = snprintf(head, sizeof head, "{\"schema\":%d,\"trace_id\":\"", schema_version);
    char times[96];
    int nm = snprintf(times, sizeof times, "\",\"start_us\":%lld,\"duration_us\":%lld,",
                      floor_div_1000(start), floor_div_1000(duration));
    static const char span_key[] = "\",\"span_id\":\"";
    static const char parent_key[] = "\",\"parent_span_id\":\"";
    Py_ssize_t total = nh + nt + (Py_ssize_t)sizeof span_key - 1 + ns +
                       (Py_ssize_t)sizeof parent_key - 1 + np + nm +
                       (Py_ssize_t)sizeof OK_FIELDS - 1 + nf + 1;
    PyObject *out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL) return NULL;
    char *p = PyBytes_AS_STRING(out);
#define PUT(src, len)          \
    do {                       \
        memcpy(p, (src), (len)); \
        p += (len);            \
    } while (0)
    PUT(head, nh);
    PUT(trace, nt);
    PUT(span_key, sizeof span_key - 1);
    PUT(span, ns);
    PUT(parent_key, sizeof parent_key - 1);
    PUT(parent, np);
    PUT(times, nm);
    PUT(OK_FIELDS, sizeof OK_FIELDS - 1);
    PUT(fields, nf);
    *p = '}';
#undef PUT
    return out;
}

/* records_of(spans, topic, record_type, stats): the export thread's share for a batch.
 * Ended tuples close their KPI counters (when they carry a key) and become records
 * record_type(topic, trace id as bytes, JSON record); the rest (span objects, and any
 * tuple that does not encode) are returned for Python to handle. */
static PyObject *mod_records_of(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyList_CheckExact(args[0]) || !PyType_Check(args[2]) ||
        !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type) ||
        (args[3] != Py_None && !PyDict_CheckExact(args[3]))) {
        PyErr_SetString(PyExc_TypeError,
                        "records_of(spans: list, topic, record_type: tuple type, stats: dict|None)");
        return NULL;
    }
    PyObject *spans = args[0], *topic = args[1], *stats = args[3];
    PyTypeObject *record_type = (PyTypeObject *)args[2];
    Py_ssize_t n = PyList_GET_SIZE(spans);
    PyObject *records = PyList_New(0), *rest = PyList_New(0);
    if (records == NULL || rest == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(spans, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 7) {
            if (PyList_Append(rest, item) < 0) goto fail;
            continue;
        }
        PyObject *key = PyTuple_GET_ITEM(item, 6);
        if (key != Py_None && stats != Py_None) {
            PyObject *s = PyDict_GetItemWithError(stats, key);
            if (s == NULL && PyErr_Occurred()) goto fail;
            if (s != NULL && Py_IS_TYPE(s, &CallStatsType)) {
                long long ns = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 5));
                if (ns == -1 && PyErr_Occurred()) {
                    PyErr_Clear();
                    ns = 0;
                }
                stats_end((CallStats *)s, ns, 0);
            }
        }
        if (PyTuple_GET_ITEM(item, 0) == Py_None) continue; /* queued for its KPIs only */
        PyObject *value = mod_encode_ended(NULL, item);
        const char *trace;
        Py_ssize_t nt;
        if (value == NULL || utf8_of(PyTuple_GET_ITEM(item, 1), &trace, &nt) < 0) {
            Py_XDECREF(value);
            PyErr_Clear(); /* Python encodes it again and counts the failure */
            PyObject *unclosed = PyTuple_Pack(7, PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1),
                                              PyTuple_GET_ITEM(item, 2), PyTuple_GET_ITEM(item, 3),
                                              PyTuple_GET_ITEM(item, 4), PyTuple_GET_ITEM(item, 5),
                                              Py_None); /* its KPIs are closed now */
            if (unclosed == NULL || PyList_Append(rest, unclosed) < 0) {
                Py_XDECREF(unclosed);
                goto fail;
            }
            Py_DECREF(unclosed);
            continue;
        }
        PyObject *key_bytes = PyBytes_FromStringAndSize(trace, nt);
        PyObject *record = key_bytes ? record_type->tp_alloc(record_type, 3) : NULL;
        if (record == NULL) {
            Py_XDECREF(key_bytes);
            Py_DECREF(value);
            goto fail;
        }
        PyTuple_SET_ITEM(record, 0, Py_NewRef(topic));
        PyTuple_SET_ITEM(record, 1, key_bytes);
        PyTuple_SET_ITEM(record, 2, value);
        int bad = PyList_Append(records, record);
        Py_DECREF(record);
        if (bad) goto fail;
    }
    return Py_BuildValue("(NN)", records, rest);
fail:
    Py_XDECREF(records);
    Py_XDECREF(rest);
    return NULL;
}

/* -- reading Invocation's slots without a getattr each ------------------------------ */
enum { I_SERVICE, I_METHOD, I_PEER, I_LOCAL, I_ATTEMPT, I_VERSION, I_GROUP, I_ONEWAY, I_EVENTS,
       I_ATTACHMENTS, I_COUNT };

static PyTypeObject *inv_type = NULL;
static Py_ssize_t inv_offsets[I_COUNT];

static int learn_invocation(PyObject *type) {
    PyObject *names[I_COUNT] = {s_service, s_method,  s_peer,  s_local,  s_attempt,
                                s_version, s_group,   s_oneway, s_events, s_attachments};
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "expected the Invocation class");
        return -1;
    }
    for (int i = 0; i < I_COUNT; i++) {
        PyObject *d = PyObject_GetAttr(type, names[i]);
        if (d == NULL) return -1;
        if (!Py_IS_TYPE(d, &PyMemberDescr_Type) ||
            ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            Py_DECREF(d);
            PyErr_Format(PyExc_TypeError, "Invocation.%U is not a slot", names[i]);
            return -1;
        }
        inv_offsets[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
    }
    Py_XSETREF(inv_type, (PyTypeObject *)Py_NewRef(type));
    return 0;
}

/* Borrowed; NULL when the slot is unset (the caller then takes the Python path). */
static inline PyObject *inv_get(PyObject *inv, int i) {
    return *(PyObject **)((char *)inv + inv_offsets[i]);
}

static inline int is_empty_str(PyObject *o) {
    return PyUnicode_CheckExact(o) && PyUnicode_GET_LENGTH(o) == 0;
}

/* -- Hot: one interceptor's fast path --------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    int server;
    PyObject *sites;        /* call shape -> (site, KPI key, site fields) */
    PyObject *stats;        /* the recorder's KPI table */
    PyObject *bounds;       /* latency bounds, ns */
    PyObject *queue;        /* the export pipeline's deque */
    PyObject *append;       /* queue.append */
    Py_ssize_t queue_max, wake_at;
    PyObject *wake;         /* wakes the export thread */
    PyObject *on_full;      /* the pipeline's on_end: counts what a full queue drops */
    PyObject *finish;       /* Python: finish(span, inv) for an end that is not plain */
    PyObject *detach;       /* Python: detach(token) when the variable refuses the reset */
    PyObject *var;          /* the OpenTelemetry context variable */
    PyObject *span_key, *baggage_key, *context_type;
    PyTypeObject *span_type;
    PyObject *name;         /* client: our service (the callee's "caller"); server: instance */
    int keep_roots;         /* every new trace is sampled */
    unsigned long long root_bound; /* else: kept when its id's low 64 bits are below this */
} Hot;

#define HOT_OBJECTS(X)                                                                 \
    X(sites) X(stats) X(bounds) X(queue) X(append) X(wake) X(on_full) X(finish) X(detach) \
        X(var) X(span_key) X(baggage_key) X(context_type) X(span_type) X(name)

GC_FUNCTIONS(Hot, HOT_OBJECTS)

static void Hot_dealloc(Hot *self) {
    PyObject_GC_UnTrack(self);
    Hot_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Hot_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"server", "sites", "stats", "bounds", "queue", "queue_max",
                             "wake_at", "wake", "on_full", "finish", "detach", "var",
                             "span_key", "baggage_key", "context_type", "span_type",
                             "name", "invocation_type", "root_bound", NULL};
    int server;
    PyObject *sites, *stats, *bounds, *queue, *wake, *on_full, *finish, *detach, *var,
        *span_key, *baggage_key, *context_type, *span_type, *name, *invocation_type, *root_bound;
    Py_ssize_t queue_max, wake_at;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "pO!O!OOnnOOOOOOOO!O!UOO!:Hot", kwlist, &server, &PyDict_Type, &sites,
            &PyDict_Type, &stats, &bounds, &queue, &queue_max, &wake_at, &wake, &on_full,
            &finish, &detach, &var, &span_key, &baggage_key, &PyType_Type, &context_type,
            &PyType_Type, &span_type, &name, &invocation_type, &PyLong_Type, &root_bound))
        return NULL;
    /* root_bound: 0..2**64 (TraceIdRatio's bound; 2**64 keeps every root) */
    int keep_roots = 0;
    unsigned long long bound = PyLong_AsUnsignedLongLong(root_bound);
    if (bound == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return NULL;
        PyErr_Clear();
        PyObject *zero = PyLong_FromLong(0);
        int negative = zero ? PyObject_RichCompareBool(root_bound, zero, Py_LT) : -1;
        Py_XDECREF(zero);
        if (negative) {
            if (negative > 0) PyErr_SetString(PyExc_ValueError, "root_bound must not be negative");
            return NULL;
        }
        keep_roots = 1; /* 2**64 or more: keep every root */
    }
    if (!PyContextVar_CheckExact(var)) {
        PyErr_SetString(PyExc_TypeError, "var must be a contextvars.ContextVar");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)span_type, &SpanCoreType) ||
        !PyType_IsSubtype((PyTypeObject *)context_type, &PyDict_Type)) {
        PyErr_SetString(PyExc_TypeError, "span_type must extend SpanCore, context_type dict");
        return NULL;
    }
    if (inv_type != (PyTypeObject *)invocation_type && learn_invocation(invocation_type) < 0)
        return NULL;
    PyObject *append = PyObject_GetAttrString(queue, "append");
    if (append == NULL) return NULL;
    Hot *self = (Hot *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(append);
        return NULL;
    }
    self->server = server;
    self->sites = Py_NewRef(sites);
    self->stats = Py_NewRef(stats);
    self->bounds = Py_NewRef(bounds);
    self->queue = Py_NewRef(queue);
    self->append = append;
    self->queue_max = queue_max;
    self->wake_at = wake_at;
    self->wake = Py_NewRef(wake);
    self->on_full = Py_NewRef(on_full);
    self->finish = Py_NewRef(finish);
    self->detach = Py_NewRef(detach);
    self->var = Py_NewRef(var);
    self->span_key = Py_NewRef(span_key);
    self->baggage_key = Py_NewRef(baggage_key);
    self->context_type = Py_NewRef(context_type);
    self->span_type = (PyTypeObject *)Py_NewRef(span_type);
    self->name = Py_NewRef(name);
    self->keep_roots = keep_roots;
    self->root_bound = bound;
    return (PyObject *)self;
}

/* A new trace's id on span, and whether the root sampler keeps it (TraceIdRatio). */
static int new_root(Hot *self, SpanCore *span) {
    uint64_t lo;
    PyObject *trace_hex = new_trace_hex(&lo);
    if (trace_hex == NULL) return -1;
    Py_SETREF(span->trace_hex, trace_hex);
    span->sampled = self->keep_roots || lo < self->root_bound;
    return 0;
}

/* A new span of entry's site, begun now; its KPI counters have one more call in flight. */
static SpanCore *new_span(Hot *self, PyObject *entry) {
    SpanCore *span = (SpanCore *)self->span_type->tp_new(self->span_type, empty_tuple, NULL);
    if (span == NULL) return NULL;
    PyObject *stats = get_stats(self->stats, PyTuple_GET_ITEM(entry, 1), self->bounds);
    if (stats == NULL) {
        Py_DECREF(span);
        return NULL;
    }
    ((CallStats *)stats)->in_flight++;
    Py_SETREF(span->kpi, stats);
    Py_SETREF(span->site, Py_NewRef(PyTuple_GET_ITEM(entry, 0)));
    Py_SETREF(span->entry, Py_NewRef(entry));
    return span;
}

static inline void start_clock(SpanCore *span) {
    span->t0 = now_ns();
    span->start_ns = span->t0 + wall_offset_ns;
}

static int truthy_str(PyObject *o) { /* "" and None are false; anything else true */
    return o != Py_None && !is_empty_str(o);
}

/* The site entry for a call shape, or NULL (no exception) when Python must make it. */
static PyObject *lookup(Hot *self, PyObject *key) {
    if (key == NULL) return NULL;
    PyObject *entry = PyDict_GetItemWithError(self->sites, key);
    Py_DECREF(key);
    if (entry == NULL || !PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3 ||
        !PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 2)))
        return NULL;
    return entry;
}

/* begin(inv) on the client: the CLIENT span, its traceparent in the attachments; or None. */
static PyObject *client_begin(Hot *self, PyObject *inv) {
    PyObject *service = inv_get(inv, I_SERVICE), *method = inv_get(inv, I_METHOD),
             *peer = inv_get(inv, I_PEER), *attempt = inv_get(inv, I_ATTEMPT),
             *version = inv_get(inv, I_VERSION), *group = inv_get(inv, I_GROUP),
             *oneway = inv_get(inv, I_ONEWAY), *events = inv_get(inv, I_EVENTS),
             *attachments = inv_get(inv, I_ATTACHMENTS);
    if (!service || !method || !peer || !attempt || !version || !group || !oneway || !events ||
        !attachments || !PyDict_CheckExact(attachments) || events != Py_None ||
        oneway != Py_False || truthy_str(version) || truthy_str(group) ||
        !PyLong_CheckExact(attempt))
        Py_RETURN_NONE;
    int overflow;
    if (PyLong_AsLongAndOverflow(attempt, &overflow) != 1 || overflow) Py_RETURN_NONE;
    PyObject *entry = lookup(self, PyTuple_Pack(3, service, method, peer));
    if (entry == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *ctx = NULL, *parent = NULL;
    if (PyContextVar_Get(self->var, NULL, &ctx) < 0) return NULL;
    if (ctx != NULL) {
        if (!PyDict_Check(ctx)) {
            Py_DECREF(ctx);
            Py_RETURN_NONE;
        }
        PyObject *baggage = PyDict_GetItemWithError(ctx, self->baggage_key);
        if (baggage == NULL && PyErr_Occurred()) goto fail_ctx;
        if (baggage != NULL && PyObject_IsTrue(baggage) != 0) { /* baggage: the Python path */
            Py_DECREF(ctx);
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        parent = PyDict_GetItemWithError(ctx, self->span_key);
        if (parent == NULL && PyErr_Occurred()) goto fail_ctx;
        if (parent == Py_None) parent = NULL;
        if (parent != NULL && Py_TYPE(parent) != self->span_type) { /* not ours: Python */
            Py_DECREF(ctx);
            Py_RETURN_NONE;
        }
        if (parent != NULL) {
            PyObject *t = ((SpanCore *)parent)->trace_hex;
            if (!PyUnicode_CheckExact(t) || !PyUnicode_IS_COMPACT_ASCII(t) ||
                PyUnicode_GET_LENGTH(t) != 32) {
                Py_DECREF(ctx); /* a parent with an odd id (made through the API): Python */
                Py_RETURN_NONE;
            }
        }
        Py_XINCREF(parent);
        Py_DECREF(ctx);
    }
    SpanCore *span = new_span(self, entry);
    if (span == NULL) {
        Py_XDECREF(parent);
        return NULL;
    }
    uint64_t span_id = nonzero_draw();
    PyObject *span_hex = hex_str(0, span_id, 1);
    if (span_hex == NULL) goto fail_span;
    Py_SETREF(span->span_hex, span_hex);
    if (parent != NULL) {
        SpanCore *p = (SpanCore *)parent;
        Py_SETREF(span->trace_hex, Py_NewRef(p->trace_hex));
        Py_SETREF(span->parent_hex, Py_NewRef(p->span_hex));
        Py_SETREF(span->trace_state, Py_NewRef(p->trace_state));
        span->sampled = p->sampled;
        Py_CLEAR(parent);
    } else {
        if (new_root(self, span) < 0) goto fail_span;
    }
    /* traceparent: 00-<32 hex>-<16 hex>-<flags> */
    PyObject *tp = PyUnicode_New(55, 127);
    if (tp == NULL) goto fail_span;
    char *t = (char *)PyUnicode_1BYTE_DATA(tp);
    memcpy(t, "00-", 3);
    memcpy(t + 3, PyUnicode_1BYTE_DATA(span->trace_hex), 32);
    t[35] = '-';
    put_hex(t + 36, span_id);
    t[52] = '-';
    t[53] = '0';
    t[54] = span->sampled ? '1' : '0';
    int bad = PyDict_SetItem(attachments, s_traceparent, tp);
    Py_DECREF(tp);
    if (bad) goto fail_span;
    if (!is_empty_str(span->trace_state) &&
        PyDict_SetItem(attachments, s_tracestate, span->trace_state) < 0)
        goto fail_span;
    if (PyDict_SetItem(attachments, s_caller_key, self->name) < 0) goto fail_span;
    start_clock(span);
    return (PyObject *)span;
fail_ctx:
    Py_DECREF(ctx);
    return NULL;
fail_span:
    Py_XDECREF(parent);
    ((CallStats *)span->kpi)->in_flight--;
    Py_DECREF(span);
    return NULL;
}

static inline int is_lower_hex(const Py_UCS1 *p, int n) {
    for (int i = 0; i < n; i++) {
        Py_UCS1 c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

static inline int all_zero(const Py_UCS1 *p, int n) {
    for (int i = 0; i < n; i++)
        if (p[i] != '0') return 0;
    return 1;
}

/* begin(inv) on the server: the SERVER span, current while the handler runs; or None. */
static PyObject *server_begin(Hot *self, PyObject *inv) {
    PyObject *service = inv_get(inv, I_SERVICE), *method = inv_get(inv, I_METHOD),
             *peer = inv_get(inv, I_PEER), *local = inv_get(inv, I_LOCAL),
             *version = inv_get(inv, I_VERSION), *group = inv_get(inv, I_GROUP),
             *oneway = inv_get(inv, I_ONEWAY), *events = inv_get(inv, I_EVENTS),
             *attachments = inv_get(inv, I_ATTACHMENTS);
    /* Every value here may come from the wire: each is type-checked before it is read
     * as what it should be (a str's bytes read off an int are undefined behaviour). */
    if (!service || !method || !peer || !local || !version || !group || !oneway || !events ||
        !attachments || !PyDict_CheckExact(attachments) || events != Py_None ||
        oneway != Py_False || truthy_str(version) || truthy_str(group) ||
        !PyUnicode_CheckExact(service) || !PyUnicode_CheckExact(method) ||
        !PyUnicode_CheckExact(peer))
        Py_RETURN_NONE;
    PyObject *caller = PyDict_GetItemWithError(attachments, s_caller_key);
    if (caller == NULL && PyErr_Occurred()) return NULL;
    PyObject *parent = PyDict_GetItemWithError(attachments, s_traceparent);
    if (parent == NULL && PyErr_Occurred()) return NULL;
    int has_baggage = PyDict_Contains(attachments, s_baggage);
    if (has_baggage < 0) return NULL;
    if (has_baggage) Py_RETURN_NONE;
    /* W3C version 00 only, well formed, ids not zero; anything else goes to Python */
    const Py_UCS1 *tp = NULL;
    if (parent != NULL) {
        if (!PyUnicode_CheckExact(parent) || !PyUnicode_IS_COMPACT_ASCII(parent) ||
            PyUnicode_GET_LENGTH(parent) != 55)
            Py_RETURN_NONE;
        tp = PyUnicode_1BYTE_DATA(parent);
        if (tp[0] != '0' || tp[1] != '0' || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
            !is_lower_hex(tp + 3, 32) || !is_lower_hex(tp + 36, 16) || !is_lower_hex(tp + 53, 2) ||
            all_zero(tp + 3, 32) || all_zero(tp + 36, 16))
            Py_RETURN_NONE;
    }
    if (!PyUnicode_CheckExact(local) && local != Py_None) Py_RETURN_NONE;
    PyObject *instance =
        local != Py_None && PyUnicode_GET_LENGTH(local) ? local : self->name; /* `local or` */
    PyObject *entry = lookup(
        self, PyTuple_Pack(5, service, method,
                           caller != NULL && PyUnicode_CheckExact(caller) ? caller : s_empty, peer,
                           instance));
    if (entry == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    SpanCore *span = new_span(self, entry);
    if (span == NULL) return NULL;
    uint64_t span_id = nonzero_draw();
    PyObject *span_hex = hex_str(0, span_id, 1);
    if (span_hex == NULL) goto fail_span;
    Py_SETREF(span->span_hex, span_hex);
    if (tp != NULL) {
        PyObject *trace_hex = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, tp + 3, 32);
        if (trace_hex == NULL) goto fail_span;
        Py_SETREF(span->trace_hex, trace_hex);
        PyObject *parent_hex = PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, tp + 36, 16);
        if (parent_hex == NULL) goto fail_span;
        Py_SETREF(span->parent_hex, parent_hex);
        Py_UCS1 last = tp[54];
        span->sampled = (last >= '0' && last <= '9') ? ((last - '0') & 1) : ((last - 'a' + 10) & 1);
        PyObject *state = PyDict_GetItemWithError(attachments, s_tracestate);
        if (state == NULL && PyErr_Occurred()) goto fail_span;
        if (state != NULL && PyUnicode_CheckExact(state) && PyUnicode_GET_LENGTH(state) <= 512)
            Py_SETREF(span->trace_state, Py_NewRef(state));
    } else {
        if (new_root(self, span) < 0) goto fail_span;
    }
    /* the span is current while the handler runs: a new Context holding only it */
    PyTypeObject *ct = (PyTypeObject *)self->context_type;
    PyObject *ctx = ct->tp_new(ct, empty_tuple, NULL);
    if (ctx == NULL) goto fail_span;
    if (PyDict_SetItem(ctx, self->span_key, (PyObject *)span) < 0) {
        Py_DECREF(ctx);
        goto fail_span;
    }
    PyObject *token = PyContextVar_Set(self->var, ctx);
    Py_DECREF(ctx);
    if (token == NULL) goto fail_span;
    Py_SETREF(span->token, token);
    start_clock(span);
    return (PyObject *)span;
fail_span:
    ((CallStats *)span->kpi)->in_flight--;
    Py_DECREF(span);
    return NULL;
}

static PyObject *Hot_begin(Hot *self, PyObject *inv) {
    if (Py_TYPE(inv) != inv_type) Py_RETURN_NONE;
    return self->server ? server_begin(self, inv) : client_begin(self, inv);
}

/* Undo what begin set in the context (server); the span's token is cleared either way. */
static int reset_token(Hot *self, SpanCore *span) {
    PyObject *token = span->token;
    if (token == Py_None) return 0;
    span->token = Py_NewRef(Py_None);
    if (PyContextVar_Reset(self->var, token) < 0) { /* another context's token */
        PyErr_Clear();
        PyObject *r = PyObject_CallOneArg(self->detach, token);
        Py_DECREF(token);
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }
    Py_DECREF(token);
    return 0;
}

/* end(span, inv) after a call that returned: a plain span closes its KPI counters and is
 * queued as an Ended tuple; any other goes to Python's finish(span, inv). */
static PyObject *Hot_end(Hot *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyObject_TypeCheck(args[0], &SpanCoreType)) {
        PyErr_SetString(PyExc_TypeError, "end(span, inv)");
        return NULL;
    }
    SpanCore *span = (SpanCore *)args[0];
    PyObject *inv = args[1];
    if (reset_token(self, span) < 0) return NULL;
    PyObject *entry = span->entry;
    int plain = Py_TYPE(inv) == inv_type && inv_get(inv, I_EVENTS) == Py_None &&
                span->duration_ns < 0 && PyTuple_CheckExact(entry) &&
                span->site == PyTuple_GET_ITEM(entry, 0) && span->attributes == Py_None &&
                span->events == Py_None &&
                (span->status == s_ok || (PyUnicode_CheckExact(span->status) &&
                                          PyUnicode_CompareWithASCIIString(span->status, "OK") == 0)) &&
                Py_IS_TYPE(span->kpi, &CallStatsType);
    if (!plain) return PyObject_CallFunctionObjArgs(self->finish, (PyObject *)span, inv, NULL);
    long long duration = now_ns() - span->t0;
    span->duration_ns = duration;
    stats_end((CallStats *)span->kpi, duration, 0);
    if (!span->sampled) Py_RETURN_NONE;
    PyObject *start = PyLong_FromLongLong(span->start_ns);
    PyObject *dur = PyLong_FromLongLong(duration);
    if (start == NULL || dur == NULL) {
        Py_XDECREF(start);
        Py_XDECREF(dur);
        return NULL;
    }
    PyObject *item = PyTuple_New(7);
    if (item == NULL) {
        Py_DECREF(start);
        Py_DECREF(dur);
        return NULL;
    }
    PyTuple_SET_ITEM(item, 0, Py_NewRef(PyTuple_GET_ITEM(entry, 2)));
    PyTuple_SET_ITEM(item, 1, Py_NewRef(span->trace_hex));
    PyTuple_SET_ITEM(item, 2, Py_NewRef(span->span_hex));
    PyTuple_SET_ITEM(item, 3, Py_NewRef(span->parent_hex));
    PyTuple_SET_ITEM(item, 4, start);
    PyTuple_SET_ITEM(item, 5, dur);
    PyTuple_SET_ITEM(item, 6, Py_NewRef(Py_None)); /* its KPIs are closed already */
    PyObject *r;
    Py_ssize_t queued = PyObject_Length(self->queue);
    if (queued < 0) {
        Py_DECREF(item);
        return NULL;
    }
    if (queued < self->queue_max) {
        r = PyObject_CallOneArg(self->append, item);
        if (r != NULL && queued + 1 == self->wake_at) {
            Py_DECREF(r);
            r = PyObject_CallNoArgs(self->wake);
        }
    } else {
        r = PyObject_CallOneArg(self->on_full, item); /* counts the drop */
    }
    Py_DECREF(item);
    if (r == NULL) return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *Hot_reset(Hot *self, PyObject *span) {
    if (!PyObject_TypeCheck(span, &SpanCoreType)) {
        PyErr_SetString(PyExc_TypeError, "reset(span)");
        return NULL;
    }
    if (reset_token(self, (SpanCore *)span) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Hot_methods[] = {
    {"begin", (PyCFunction)Hot_begin, METH_O,
     "begin(inv): the call's span, or None when Python must take the call."},
    {"end", (PyCFunction)(void (*)(void))Hot_end, METH_FASTCALL,
     "end(span, inv): after a call that returned."},
    {"reset", (PyCFunction)Hot_reset, METH_O,
     "reset(span): undo what begin set in the context (before Python ends a failed call)."},
    {NULL},
};

static PyTypeObject HotType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "instrument._hotpath.Hot",
    .tp_doc = PyDoc_STR("One RPC interceptor's fast path (see instrument/_interceptors.py)."),
    .tp_basicsize = sizeof(Hot),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Hot_new,
    .tp_dealloc = (destructor)Hot_dealloc,
    .tp_traverse = (traverseproc)Hot_traverse,
    .tp_clear = (inquiry)Hot_clear,
    .tp_methods = Hot_methods,
};

/* -- module ---------------------------------------------------------------------------- */
static PyObject *mod_set_wall_offset(PyObject *m, PyObject *arg) {
    long long v = PyLong_AsLongLong(arg);
    if (v == -1 && PyErr_Occurred()) return NULL;
    wall_offset_ns = v;
    Py_RETURN_NONE;
}

static PyObject *mod_set_schema(PyObject *m, PyObject *arg) {
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred()) return NULL;
    schema_version = (int)v;
    Py_RETURN_NONE;
}

static PyObject *mod_reseed(PyObject *m, PyObject *unused) {
    rng_seed();
    Py_RETURN_NONE;
}

static PyObject *mod_new_ids(PyObject *m, PyObject *unused) {
    uint64_t lo;
    PyObject *t = new_trace_hex(&lo);
    if (t == NULL) return NULL;
    PyObject *s = hex_str(0, nonzero_draw(), 1);
    if (s == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    return Py_BuildValue("(NN)", t, s);
}

static PyMethodDef module_methods[] = {
    {"stats_begin", (PyCFunction)(void (*)(void))mod_stats_begin, METH_FASTCALL,
     "stats_begin(stats, key, bounds_ns): the key's counters, with one more call in flight."},
    {"take_all", (PyCFunction)mod_take_all, METH_O,
     "take_all(stats): close every key's window (idle keys are forgotten)."},
    {"encode_ended", (PyCFunction)mod_encode_ended, METH_O,
     "encode_ended(item): the JSON span record of an Ended tuple."},
    {"records_of", (PyCFunction)(void (*)(void))mod_records_of, METH_FASTCALL,
     "records_of(spans, topic, record_type, stats): (records, what Python must handle)."},
    {"set_wall_offset", (PyCFunction)mod_set_wall_offset, METH_O,
     "set_wall_offset(ns): wall clock minus the monotonic clock."},
    {"set_schema", (PyCFunction)mod_set_schema, METH_O, "set_schema(version)"},
    {"reseed", (PyCFunction)mod_reseed, METH_NOARGS, "Reseed the id generator (after fork)."},
    {"new_ids", (PyCFunction)mod_new_ids, METH_NOARGS, "(trace hex, span hex), both random."},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "instrument._hotpath",
    "The RPC interceptors' hot path in C (see instrument/_hotpath.c).", -1, module_methods,
};

#define INTERN(var, text)                                  \
    do {                                                   \
        if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL; \
    } while (0)

PyMODINIT_FUNC PyInit__hotpath(void) {
    INTERN(s_service, "service");
    INTERN(s_method, "method");
    INTERN(s_peer, "peer");
    INTERN(s_local, "local");
    INTERN(s_attempt, "attempt");
    INTERN(s_version, "version");
    INTERN(s_group, "group");
    INTERN(s_oneway, "oneway");
    INTERN(s_events, "events");
    INTERN(s_attachments, "attachments");
    INTERN(s_traceparent, "traceparent");
    INTERN(s_tracestate, "tracestate");
    INTERN(s_baggage, "baggage");
    INTERN(s_caller_key, "callscope-caller");
    INTERN(s_ok, "OK");
    INTERN(s_empty, "");
    if ((empty_tuple = PyTuple_New(0)) == NULL) return NULL;
    rng_seed();
    if (PyType_Ready(&SpanCoreType) < 0 || PyType_Ready(&CallStatsType) < 0 ||
        PyType_Ready(&HotType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "SpanCore", (PyObject *)&SpanCoreType) < 0 ||
        PyModule_AddObjectRef(m, "CallStats", (PyObject *)&CallStatsType) < 0 ||
        PyModule_AddObjectRef(m, "Hot", (PyObject *)&HotType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
