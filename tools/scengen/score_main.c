/*
 * flowveil-score: precision and recall of flowveil's alerts against the
 * ground truth of flowveil-scengen.
 *
 * The ground truth names planted hosts by their raw address; alerts name
 * them by pseudonym. The scorer opens the store's key file read-only and
 * computes each planted address's pseudonym token under the current
 * epoch key, as `flowveil subject` does. This works because the scenario
 * policy's key rotation is longer than the scenario and ingest runs with
 * a fixed --now, so every record of the run is in one epoch.
 *
 * Matching, per detector D:
 * - An alert of D matches a planted event of D when its host is the
 *   event's host and its first..last span overlaps the event's span,
 *   widened by --slack on each side. When the event names a peer, the
 *   alert's peer and peer port must be the event's too.
 * - An alert of D that matches no event of D but matches, by host and
 *   time, an event that lists D as "incidental" (an expected side effect,
 *   such as a rare-destination alert for a beacon's new peer) counts
 *   neither way.
 * - An alert about a whole zone (no host, such as a zone baseline) that
 *   overlaps an event in that zone whose detector is D, or which lists D
 *   as incidental, counts neither way: it points at the zone, not the
 *   host.
 * - Every other alert of D is a false positive.
 * Recall is matched events / events; precision is true alerts / (true +
 * false alerts).
 *
 * Exit status: 0 when every detector with planted events meets the
 * targets, 1 when one misses them, 2 on bad usage or unreadable input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "anonymize.h"
#include "fv_common.h"
#include "tool_cli.h"

#define PROGRAM "flowveil-score"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROGRAM " --truth FILE --alerts FILE --key FILE [--json FILE]\n"
            "                      [--slack SECONDS] [--min-recall R] [--min-precision P]\n"
            "  --truth FILE         ground truth written by flowveil-scengen (truth.jsonl)\n"
            "  --alerts FILE        output of `flowveil export --class alerts`\n"
            "  --key FILE           the store's pseudonym.key (read only)\n"
            "  --json FILE          also write the figures as one JSON object ('-' for stdout)\n"
            "  --slack SECONDS      how far an alert's span may lie outside the event's\n"
            "                       (default 3600)\n"
            "  --min-recall R       target recall per detector, 0 to 1 (default 0.95)\n"
            "  --min-precision P    target precision per detector, 0 to 1 (default 0.90)\n");
}

#define bad_usage(...) tool_bad_usage(PROGRAM, usage, __VA_ARGS__)

/* A planted event with the text its host and peer have in alerts. */
typedef struct event {
    json_t *json;
    int detector;
    char host[FV_ENDPOINT_TEXT_MAX];
    char peer[FV_ENDPOINT_TEXT_MAX]; /* "" when any peer matches */
    long port;
    uint64_t first_us, last_us;
    bool found;
} event;

typedef struct alert {
    json_t *json;
    int detector; /* 0 for a name this scorer does not know */
    const char *host, *peer;
    const char *host_zone;
    long port;
    uint64_t first_us, last_us; /* 0, UINT64_MAX when absent */
} alert;

typedef struct tally {
    size_t events, found, alerts, true_alerts, false_alerts, incidental;
} tally;

static int detector_id(const char *name)
{
    for (int d = 1; d <= FV_DET_MAX; d++) {
        const char *n = fv_detector_name(d);
        if (n != NULL && name != NULL && strcmp(n, name) == 0)
            return d;
    }
    return 0;
}

/* Read FILE as JSON Lines into a new array; NULL after a message. */
static json_t *read_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, PROGRAM ": error: %s: cannot open: %s\n", path, strerror(errno));
        return NULL;
    }
    json_t *all = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (n == 0 || line[0] == '\n')
            continue;
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!json_is_object(obj)) {
            fprintf(stderr, PROGRAM ": error: %s:%u: not a JSON object: %s\n", path, lineno,
                    jerr.text);
            json_decref(obj);
            json_decref(all);
            all = NULL;
            break;
        }
        json_array_append_new(all, obj);
    }
    free(line);
    fclose(f);
    return all;
}

/* The text an alert shows for raw address TEXT: the address itself, or
 * its pseudonym token when INTERNAL. Return false if TEXT is no IPv4
 * address. */
static bool endpoint_text(anon_ctx *anon, const char *text, bool internal,
                          char out[FV_ENDPOINT_TEXT_MAX])
{
    uint8_t ip[4];
    if (text == NULL || inet_pton(AF_INET, text, ip) != 1)
        return false;
    if (!internal) {
        snprintf(out, FV_ENDPOINT_TEXT_MAX, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
        return true;
    }
    fv_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.kind = FV_EP_PSEUDO_IPV4;
    anon_pseudonym(anon, ANON_TYPE_IPV4, ip, sizeof ip, ep.addr);
    fv_endpoint_format(&ep, out);
    return true;
}

static uint64_t time_field(json_t *obj, const char *name, uint64_t missing)
{
    const char *text = json_string_value(json_object_get(obj, name));
    uint64_t us = 0;
    if (text == NULL || fv_time_parse(text, &us) != FV_OK)
        return missing;
    return us;
}

static bool overlaps(const alert *a, const event *e, uint64_t slack_us)
{
    uint64_t lo = e->first_us > slack_us ? e->first_us - slack_us : 0;
    uint64_t hi = e->last_us + slack_us;
    return a->first_us <= hi && a->last_us >= lo;
}

static bool same_host(const alert *a, const event *e)
{
    return a->host != NULL && strcmp(a->host, e->host) == 0;
}

static bool matches(const alert *a, const event *e, uint64_t slack_us)
{
    if (a->detector != e->detector || !same_host(a, e) || !overlaps(a, e, slack_us))
        return false;
    if (e->peer[0] == '\0')
        return true;
    return a->peer != NULL && strcmp(a->peer, e->peer) == 0 && (e->port == 0 || a->port == e->port);
}

/* True for detectors whose alerts are about one (host, peer) pair; the
 * others (scan, DNS, off-hours, baseline) are about the host alone. */
static bool peer_detector(int detector)
{
    return detector == FV_DET_BEACON || detector == FV_DET_EXFIL ||
           detector == FV_DET_LONG_CONN || detector == FV_DET_RARE_DEST ||
           detector == FV_DET_SEGMENTATION || detector == FV_DET_INDICATOR;
}

static bool lists_incidental(const event *e, int detector)
{
    size_t i;
    json_t *name;
    json_array_foreach(json_object_get(e->json, "incidental"), i, name) {
        if (detector_id(json_string_value(name)) == detector)
            return true;
    }
    return false;
}

/* True for an alert without a host about the zone of event E, in its
 * time, from E's detector or one E lists as incidental. */
static bool zone_alert_on(const alert *a, const event *e, uint64_t slack_us)
{
    const char *zone = json_string_value(json_object_get(e->json, "zone"));
    if (a->host != NULL || a->host_zone == NULL || zone == NULL || strcmp(a->host_zone, zone) != 0)
        return false;
    return overlaps(a, e, slack_us) && (a->detector == e->detector || lists_incidental(e, a->detector));
}

static bool incidental_to(const alert *a, const event *e, uint64_t slack_us)
{
    if (zone_alert_on(a, e, slack_us))
        return true;
    if (!same_host(a, e) || !overlaps(a, e, slack_us))
        return false;
    /* A side effect of a (host, peer) event concerns that peer. */
    if (peer_detector(a->detector) && e->peer[0] != '\0' &&
        (a->peer == NULL || strcmp(a->peer, e->peer) != 0))
        return false;
    return lists_incidental(e, a->detector);
}

/* Load the events of TRUTH; return how many, or -1 after a message. */
static long load_events(json_t *truth, anon_ctx *anon, event *out)
{
    size_t i;
    json_t *obj;
    json_array_foreach(truth, i, obj) {
        event *e = &out[i];
        memset(e, 0, sizeof *e);
        e->json = obj;
        e->detector = detector_id(json_string_value(json_object_get(obj, "detector")));
        const char *host = json_string_value(json_object_get(obj, "host"));
        const char *peer = json_string_value(json_object_get(obj, "peer"));
        bool peer_internal = json_is_true(json_object_get(obj, "peer_internal"));
        if (e->detector == 0 || !endpoint_text(anon, host, true, e->host) ||
            (peer != NULL && !endpoint_text(anon, peer, peer_internal, e->peer))) {
            fprintf(stderr, PROGRAM ": error: truth line %zu: unknown detector or invalid host "
                            "or peer address\n", i + 1);
            return -1;
        }
        e->port = (long)json_integer_value(json_object_get(obj, "port"));
        e->first_us = (uint64_t)json_integer_value(json_object_get(obj, "first_us"));
        e->last_us = (uint64_t)json_integer_value(json_object_get(obj, "last_us"));
    }
    return (long)json_array_size(truth);
}

static void load_alerts(json_t *alerts, alert *out)
{
    size_t i;
    json_t *obj;
    json_array_foreach(alerts, i, obj) {
        alert *a = &out[i];
        a->json = obj;
        a->detector = detector_id(json_string_value(json_object_get(obj, "detector")));
        a->host = json_string_value(json_object_get(obj, "host"));
        a->peer = json_string_value(json_object_get(obj, "peer"));
        a->host_zone = json_string_value(json_object_get(obj, "host_zone"));
        a->port = (long)json_integer_value(json_object_get(obj, "peer_port"));
        a->first_us = time_field(obj, "first", 0);
        a->last_us = time_field(obj, "last", UINT64_MAX);
    }
}

static double ratio(size_t num, size_t den)
{
    return den == 0 ? -1.0 : (double)num / (double)den;
}

static void print_ratio(double r)
{
    if (r < 0.0)
        printf("  %9s", "n/a");
    else
        printf("  %9.3f", r);
}

int main(int argc, char **argv)
{
    const char *truth_path = NULL, *alerts_path = NULL, *key_path = NULL, *json_path = NULL;
    double slack_s = 3600.0, min_recall = 0.95, min_precision = 0.90;

    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return bad_usage("option %s needs a value", opt);
        const char *value = argv[++i];
        char *end = NULL;
        if (strcmp(opt, "--truth") == 0) {
            truth_path = value;
        } else if (strcmp(opt, "--alerts") == 0) {
            alerts_path = value;
        } else if (strcmp(opt, "--key") == 0) {
            key_path = value;
        } else if (strcmp(opt, "--json") == 0) {
            json_path = value;
        } else if (strcmp(opt, "--slack") == 0) {
            slack_s = strtod(value, &end);
            if (end == value || *end != '\0' || !(slack_s >= 0.0 && slack_s <= 30.0 * 86400.0))
                return bad_usage("--slack '%s' is invalid; use seconds from 0 to 2592000", value);
        } else if (strcmp(opt, "--min-recall") == 0 || strcmp(opt, "--min-precision") == 0) {
            double v = strtod(value, &end);
            if (end == value || *end != '\0' || !(v >= 0.0 && v <= 1.0))
                return bad_usage("%s '%s' is invalid; use a number from 0 to 1", opt, value);
            if (strcmp(opt, "--min-recall") == 0)
                min_recall = v;
            else
                min_precision = v;
        } else {
            return bad_usage("unknown option '%s'", opt);
        }
    }
    if (truth_path == NULL || alerts_path == NULL || key_path == NULL)
        return bad_usage("--truth, --alerts and --key are required");

    int rc = 2;
    anon_ctx *anon = NULL;
    event *events = NULL;
    alert *alerts = NULL;
    json_t *truth = read_lines(truth_path);
    json_t *alert_list = read_lines(alerts_path);
    json_t *report = NULL;
    char err[256];
    if (truth == NULL || alert_list == NULL)
        goto out;
    if (anon_open_readonly(key_path, &anon, err, sizeof err) != FV_OK) {
        fprintf(stderr, PROGRAM ": error: %s\n", err);
        goto out;
    }
    events = calloc(json_array_size(truth) + 1, sizeof *events);
    alerts = calloc(json_array_size(alert_list) + 1, sizeof *alerts);
    if (events == NULL || alerts == NULL) {
        fprintf(stderr, PROGRAM ": error: out of memory\n");
        goto out;
    }
    long event_count = load_events(truth, anon, events);
    if (event_count < 0)
        goto out;
    size_t alert_count = json_array_size(alert_list);
    load_alerts(alert_list, alerts);

    uint64_t slack_us = (uint64_t)(slack_s * 1e6);
    tally t[FV_DET_MAX + 1];
    memset(t, 0, sizeof t);
    for (long i = 0; i < event_count; i++)
        t[events[i].detector].events++;

    for (size_t k = 0; k < alert_count; k++) {
        alert *a = &alerts[k];
        t[a->detector].alerts++;
        bool matched = false;
        for (long i = 0; i < event_count; i++) {
            if (matches(a, &events[i], slack_us)) {
                events[i].found = true;
                matched = true;
            }
        }
        if (matched) {
            t[a->detector].true_alerts++;
            continue;
        }
        bool side_effect = false;
        for (long i = 0; i < event_count && !side_effect; i++)
            side_effect = incidental_to(a, &events[i], slack_us);
        if (side_effect) {
            t[a->detector].incidental++;
            continue;
        }
        t[a->detector].false_alerts++;
        printf("false positive: %s host %s peer %s:%ld, %s .. %s: %s\n",
               a->detector != 0 ? fv_detector_name(a->detector) : "unknown",
               a->host != NULL ? a->host : "-", a->peer != NULL ? a->peer : "-", a->port,
               json_string_value(json_object_get(a->json, "first")),
               json_string_value(json_object_get(a->json, "last")),
               json_string_value(json_object_get(a->json, "summary")));
    }
    for (long i = 0; i < event_count; i++) {
        if (events[i].found)
            continue;
        json_t *ej = events[i].json;
        char *params = json_dumps(json_object_get(ej, "params"), JSON_COMPACT);
        printf("missed: %s #%lld host %s (%s) peer %s port %lld, %s .. %s %s\n",
               fv_detector_name(events[i].detector),
               (long long)json_integer_value(json_object_get(ej, "id")), events[i].host,
               json_string_value(json_object_get(ej, "host")),
               events[i].peer[0] != '\0' ? events[i].peer : "any",
               (long long)events[i].port, json_string_value(json_object_get(ej, "first")),
               json_string_value(json_object_get(ej, "last")), params != NULL ? params : "");
        free(params);
    }
    for (long i = 0; i < event_count; i++)
        t[events[i].detector].found += events[i].found ? 1 : 0;

    printf("\n%-17s %6s %6s %9s %7s %6s %6s %10s %10s  %s\n", "detector", "events", "found",
           "recall", "alerts", "true", "false", "incidental", "precision", "status");
    report = json_object();
    json_t *per = json_object();
    bool pass = true;
    for (int d = 0; d <= FV_DET_MAX; d++) {
        const tally *x = &t[d];
        const char *name = d == 0 ? "unknown" : fv_detector_name(d);
        if (d == 0 && x->alerts == 0)
            continue;
        double recall = ratio(x->found, x->events);
        double precision = ratio(x->true_alerts, x->true_alerts + x->false_alerts);
        const char *status = "ok";
        if (x->events == 0)
            status = x->alerts == 0 ? "not planted" : "not planted, alerts are false";
        else if (x->alerts == 0)
            status = "FAIL: no alerts (detector missing or disabled?)";
        else if (recall < min_recall && precision >= 0.0 && precision < min_precision)
            status = "FAIL: recall and precision";
        else if (recall < min_recall)
            status = "FAIL: recall";
        else if (precision >= 0.0 && precision < min_precision)
            status = "FAIL: precision";
        if (strncmp(status, "FAIL", 4) == 0 || (x->events == 0 && x->false_alerts > 0))
            pass = false;
        printf("%-17s %6zu %6zu", name, x->events, x->found);
        print_ratio(recall);
        printf(" %7zu %6zu %6zu %10zu", x->alerts, x->true_alerts, x->false_alerts,
               x->incidental);
        print_ratio(precision);
        printf("  %s\n", status);
        json_object_set_new(
            per, name,
            json_pack("{s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:o,s:s}", "events", (json_int_t)x->events,
                      "found", (json_int_t)x->found,
                      "recall", recall < 0.0 ? json_null() : json_real(recall), "alerts",
                      (json_int_t)x->alerts, "true_alerts", (json_int_t)x->true_alerts,
                      "false_alerts", (json_int_t)x->false_alerts, "incidental_alerts",
                      (json_int_t)x->incidental, "precision",
                      precision < 0.0 ? json_null() : json_real(precision), "status", status));
    }
    printf("\ntargets: recall >= %.2f and precision >= %.2f per planted detector: %s\n",
           min_recall, min_precision, pass ? "met" : "NOT met");
    json_object_set_new(report, "detectors", per);
    json_object_set_new(report, "min_recall", json_real(min_recall));
    json_object_set_new(report, "min_precision", json_real(min_precision));
    json_object_set_new(report, "slack_s", json_real(slack_s));
    json_object_set_new(report, "pass", json_boolean(pass));
    if (json_path != NULL) {
        int jrc = strcmp(json_path, "-") == 0
                      ? json_dumpf(report, stdout, JSON_INDENT(2) | JSON_SORT_KEYS)
                      : json_dump_file(report, json_path, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (jrc != 0) {
            fprintf(stderr, PROGRAM ": error: %s: cannot write the JSON report\n", json_path);
            goto out;
        }
        if (strcmp(json_path, "-") == 0)
            printf("\n");
    }
    rc = pass ? 0 : 1;
out:
    json_decref(report);
    free(events);
    free(alerts);
    anon_close(&anon);
    json_decref(truth);
    json_decref(alert_list);
    return rc;
}
