/*
 * cmd_keys_authority.c: one pseudonymization key schedule for many
 * sensors.
 *
 *   flowveil keys authority init|enroll|issue|destroy --dir DIR ...
 *   flowveil keys sensor-keygen --db DIR
 *   flowveil keys import --db DIR SEALED_FILE
 *
 * The authority directory:
 *   authority.state             "last_epoch N" (no key material)
 *   authority.sign.key          Ed25519 key that signs every sealed file
 *   authority.sign.pub          its public key, which every sensor pins
 *   authority.log               hash-chained record of every action
 *   sensors/NAME.pub            enrolled sensor public keys
 *   outbox/NAME/epoch-N.sealed  epoch N sealed to sensor NAME
 *
 * The authority never stores an epoch key: `issue` draws it in locked
 * memory, seals it to every enrolled sensor and wipes it. The sealed
 * files are the only copies outside the sensors' key files, and only
 * the sensors' secret keys open them. A sensor enrolled after an issue
 * receives keys from the next issue on.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "anonymize.h"
#include "cli.h"
#include "store.h"

#define STATE_FILE "authority.state"
#define LOG_FILE "authority.log"
#define SENSOR_NAME_MAX 63
#define LOG_LINE_MAX 1024

enum { OPT_EPOCH = 256, OPT_START, OPT_BEFORE, OPT_AUTHORITY_KEY, OPT_FORCE };

/* Largest step of `issue --epoch N` past the last issued epoch without
 * --force. An authority that issued epoch 2^62-1 can never issue again,
 * so a larger jump is taken for a typo until --force confirms it. */
#define ISSUE_MAX_EPOCH_STEP 1000u

static const char AUTHORITY_USAGE[] =
    "usage: flowveil keys authority init --dir DIR\n"
    "       flowveil keys authority enroll --dir DIR --sensor NAME --public-key FILE\n"
    "       flowveil keys authority issue --dir DIR [--epoch N [--force]] [--start SECONDS]\n"
    "       flowveil keys authority destroy --dir DIR --before EPOCH\n"
    "       flowveil keys authority remove --dir DIR --sensor NAME\n"
    "\n"
    "Run a key authority that gives many sensors one pseudonymization key\n"
    "schedule, so one identity has one pseudonym at every site in an epoch.\n"
    "\n"
    "  init      create the authority directory DIR (mode 0700) and its signing\n"
    "            key; give DIR/authority.sign.pub to every sensor. On a directory\n"
    "            of an older version without a signing key, add one\n"
    "  enroll    add sensor NAME ([a-z0-9._-], up to 63 characters) with the\n"
    "            public key FILE that `flowveil keys sensor-keygen` wrote\n"
    "  issue     draw the key of epoch N (default: the last issued + 1, at most\n"
    "            2^62-1), seal it to every enrolled sensor into\n"
    "            DIR/outbox/NAME/epoch-N.sealed, sign each file and wipe the key;\n"
    "            the authority keeps no copy. --start sets the epoch's start in\n"
    "            seconds since 1970 (default: now). An --epoch more than 1000\n"
    "            past the last issued one also needs --force\n"
    "  destroy   delete the sealed files of every epoch before EPOCH and record\n"
    "            the deletion in DIR/authority.log\n"
    "  remove    un-enroll sensor NAME: delete its public key and its sealed\n"
    "            files, so later issues skip it\n";

static const char SENSOR_USAGE[] =
    "usage: flowveil keys sensor-keygen --db DIR [--authority-key FILE]\n"
    "       flowveil keys import --db DIR [--authority-key FILE] SEALED_FILE\n"
    "\n"
    "  sensor-keygen  create the sensor's key pair in DIR: sensor.box.key (mode\n"
    "                 0600) and sensor.box.pub, which the authority enrolls. From\n"
    "                 then on the store never makes or rotates its own epoch key\n"
    "  import         check the authority's signature on the sealed epoch file,\n"
    "                 open it with the sensor key and write the epoch key into\n"
    "                 DIR/pseudonym.key; a running capture, ingest or collect\n"
    "                 switches to it within a second\n"
    "\n"
    "  --authority-key FILE  pin the authority public key FILE (the authority's\n"
    "                 authority.sign.pub) in DIR; needed once, before the first\n"
    "                 import. A different key than the pinned one is rejected\n";

/* ---------------------------------------------------------------------- */
/* Authority directory                                                     */
/* ---------------------------------------------------------------------- */

static bool path_join(char out[PATH_MAX], const char *a, const char *b)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", a, b);
    return n > 0 && n < PATH_MAX;
}

static bool valid_sensor_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > SENSOR_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Write TEXT into a new file PATH with MODE, replacing it atomically
 * through PATH.tmp. Returns 0 or an errno value. */
static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return ENAMETOOLONG;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return errno;
    int e = 0;
    size_t done = 0;
    while (e == 0 && done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            e = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    close(fd);
    if (e == 0 && rename(tmp, path) != 0)
        e = errno;
    if (e != 0)
        unlink(tmp);
    return e;
}

/* Read the last issued epoch from DIR/authority.state. */
static int read_state(const char *dir, uint64_t *last_epoch)
{
    char path[PATH_MAX];
    if (!path_join(path, dir, STATE_FILE))
        return FV_ERR_INVALID;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "flowveil: error: %s: %s; create the authority with `flowveil keys "
                        "authority init --dir %s`\n",
                path, strerror(errno), dir);
        return FV_ERR_NOT_FOUND;
    }
    char line[64];
    unsigned long long v = 0;
    bool ok = fgets(line, sizeof line, f) != NULL && strncmp(line, "last_epoch ", 11) == 0;
    fclose(f);
    if (ok) {
        const char *digits = line + 11;
        char *end;
        errno = 0;
        v = strtoull(digits, &end, 10);
        ok = isdigit((unsigned char)digits[0]) && errno == 0 && (*end == '\n' || *end == '\0');
    }
    if (!ok) {
        fprintf(stderr, "flowveil: error: %s: expected \"last_epoch N\"; restore the file from "
                        "a backup\n",
                path);
        return FV_ERR_PARSE;
    }
    *last_epoch = v;
    return FV_OK;
}

static int write_state(const char *dir, uint64_t last_epoch)
{
    char path[PATH_MAX], text[64];
    if (!path_join(path, dir, STATE_FILE))
        return FV_ERR_INVALID;
    int n = snprintf(text, sizeof text, "last_epoch %llu\n", (unsigned long long)last_epoch);
    int e = write_file_atomic(path, text, (size_t)n, 0600);
    if (e != 0) {
        fprintf(stderr, "flowveil: error: %s: cannot write: %s\n", path, strerror(e));
        return FV_ERR_IO;
    }
    return FV_OK;
}

/*
 * Append "TIME ACTION PARAMS prev=HASH" to DIR/authority.log, where HASH
 * is the hex BLAKE2b-256 of the previous line (64 zeros for the first),
 * so removing or editing a line breaks the chain from there on. The
 * line is fsynced before the command reports success.
 */
static int authority_log(const char *dir, const char *action, const char *params)
{
    char path[PATH_MAX];
    if (!path_join(path, dir, LOG_FILE))
        return FV_ERR_INVALID;

    /* Hash the last line of the log, if any. */
    uint8_t digest[crypto_generichash_BYTES] = {0};
    char prev_hex[2 * crypto_generichash_BYTES + 1];
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        char line[LOG_LINE_MAX + 2], last[LOG_LINE_MAX + 2] = "";
        while (fgets(line, sizeof line, f) != NULL)
            memcpy(last, line, sizeof last);
        fclose(f);
        size_t len = strlen(last);
        if (len > 0 && last[len - 1] == '\n')
            len--;
        if (len > 0)
            crypto_generichash(digest, sizeof digest, (const uint8_t *)last, len, NULL, 0);
    }
    sodium_bin2hex(prev_hex, sizeof prev_hex, digest, sizeof digest);

    char when[FV_TIME_TEXT_MAX];
    fv_time_format(fv_now_us(), when);
    char entry[LOG_LINE_MAX + 2];
    int n = snprintf(entry, sizeof entry, "%s %s %s prev=%s\n", when, action, params, prev_hex);
    if (n < 0 || (size_t)n >= sizeof entry)
        return FV_ERR_FULL;

    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write(fd, entry, (size_t)n) != n || fsync(fd) != 0) {
        fprintf(stderr, "flowveil: error: %s: cannot append the record: %s\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return FV_ERR_IO;
    }
    close(fd);
    return FV_OK;
}

/* ---------------------------------------------------------------------- */
/* Subcommands                                                             */
/* ---------------------------------------------------------------------- */

typedef struct authority_options {
    const char *dir;
    const char *sensor;
    const char *public_key;
    uint64_t epoch;
    uint64_t start_s;
    uint64_t before;
    bool force;         /* issue: allow an --epoch far past the last issued one */
} authority_options;

/* Parse a positive whole number for OPTION. */
static int parse_u64(const char *option, const char *text, uint64_t *out)
{
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (!(text[0] >= '0' && text[0] <= '9') || *end != '\0' || errno != 0 || v == 0)
        return cli_usage_error("keys", "invalid %s value '%s': expected a whole number from 1",
                               option, text);
    *out = v;
    return CLI_EXIT_OK;
}

static int parse_authority_options(int argc, char **argv, authority_options *o)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"sensor", required_argument, NULL, 's'},
        {"public-key", required_argument, NULL, 'k'},
        {"epoch", required_argument, NULL, OPT_EPOCH},
        {"start", required_argument, NULL, OPT_START},
        {"before", required_argument, NULL, OPT_BEFORE},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:s:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->dir = optarg; break;
        case 's': o->sensor = optarg; break;
        case 'k': o->public_key = optarg; break;
        case OPT_EPOCH:
            if (parse_u64("--epoch", optarg, &o->epoch) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            if (o->epoch > ANON_EPOCH_MAX)
                return cli_usage_error("keys", "invalid --epoch value '%s': epochs go up to %llu"
                                               " (2^62-1)",
                                       optarg, (unsigned long long)ANON_EPOCH_MAX);
            break;
        case OPT_START:
            if (cli_parse_seconds("keys", "--start", optarg, &o->start_s) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_BEFORE:
            if (parse_u64("--before", optarg, &o->before) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            break;
        case OPT_FORCE: o->force = true; break;
        case 'h': printf("%s", AUTHORITY_USAGE); return CLI_EXIT_OK;
        case ':': return cli_usage_error("keys", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("keys", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("keys", "unexpected argument '%s'", argv[optind]);
    if (o->dir == NULL)
        return cli_usage_error("keys", "missing --dir DIR (the authority directory)");
    return -1;
}

static int authority_init(const authority_options *o)
{
    char path[PATH_MAX];
    /* parse_authority_options returns -1 only with o->dir set. */
    if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {  // NOLINT(clang-analyzer-core.NonNullParamChecker)
        fprintf(stderr, "flowveil: error: %s: cannot create the directory: %s\n", o->dir,
                strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    struct stat st;
    char err[1024];
    if (!path_join(path, o->dir, STATE_FILE) || lstat(path, &st) == 0) {
        /* An authority of an older version has no signing key: add one. */
        char sign_path[PATH_MAX];
        if (!path_join(sign_path, o->dir, ANON_AUTHORITY_KEY_FILE) || lstat(sign_path, &st) == 0) {
            fprintf(stderr, "flowveil: error: %s: an authority already exists there; choose "
                            "another --dir\n",
                    o->dir);
            return CLI_EXIT_FAILURE;
        }
        if (anon_authority_keygen(o->dir, err, sizeof err) != FV_OK) {
            fprintf(stderr, "flowveil: error: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
        if (authority_log(o->dir, "sign-key", "created=1") != FV_OK)
            return CLI_EXIT_FAILURE;
        printf("signing key added to the key authority in %s; pin %s/%s on every sensor with "
               "`flowveil keys import --authority-key`\n",
               o->dir, o->dir, ANON_AUTHORITY_PUB_FILE);
        return CLI_EXIT_OK;
    }
    char sensors[PATH_MAX], outbox[PATH_MAX];
    if (!path_join(sensors, o->dir, "sensors") || !path_join(outbox, o->dir, "outbox") ||
        (mkdir(sensors, 0700) != 0 && errno != EEXIST) ||
        (mkdir(outbox, 0700) != 0 && errno != EEXIST)) {
        fprintf(stderr, "flowveil: error: %s: cannot create sensors/ and outbox/: %s\n", o->dir,
                strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    if (anon_authority_keygen(o->dir, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    if (write_state(o->dir, 0) != FV_OK || authority_log(o->dir, "init", "-") != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("key authority created in %s; enroll sensors with `flowveil keys authority enroll` "
           "and give each one %s/%s\n",
           o->dir, o->dir, ANON_AUTHORITY_PUB_FILE);
    return CLI_EXIT_OK;
}

/* First 16 hex digits of BLAKE2b-256 of PK: a fingerprint for the log. */
static void key_fingerprint(const uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES], char out[17])
{
    uint8_t digest[crypto_generichash_BYTES];
    crypto_generichash(digest, sizeof digest, pk, ANON_BOX_PUBLIC_KEY_BYTES, NULL, 0);
    sodium_bin2hex(out, 17, digest, 8);
}

/* True if a sensor in SENSORS_DIR has the public key PK; NAME gets it. */
static bool find_enrolled_key(const char *sensors_dir, const uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES],
                              char name[SENSOR_NAME_MAX + 1])
{
    DIR *d = opendir(sensors_dir);
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *ent;
    while (!found && (ent = readdir(d)) != NULL) {
        size_t len = strlen(ent->d_name);
        if (len <= 4 || len - 4 > SENSOR_NAME_MAX || strcmp(ent->d_name + len - 4, ".pub") != 0)
            continue;
        char path[PATH_MAX], err[1024];
        uint8_t other[ANON_BOX_PUBLIC_KEY_BYTES];
        if (!path_join(path, sensors_dir, ent->d_name) ||
            anon_sensor_pub_read(path, other, err, sizeof err) != FV_OK)
            continue;
        if (sodium_memcmp(other, pk, sizeof other) == 0) {
            memcpy(name, ent->d_name, len - 4);
            name[len - 4] = '\0';
            found = true;
        }
    }
    closedir(d);
    return found;
}

static int authority_enroll(const authority_options *o)
{
    if (o->sensor == NULL || o->public_key == NULL)
        return cli_usage_error("keys", "enroll needs --sensor NAME and --public-key FILE");
    if (!valid_sensor_name(o->sensor))
        return cli_usage_error("keys", "invalid --sensor '%s': use 1 to %d characters of a-z, "
                                       "0-9, '.', '_' and '-', not starting with '.' or '-'",
                               o->sensor, SENSOR_NAME_MAX);
    uint64_t last_epoch = 0;
    if (read_state(o->dir, &last_epoch) != FV_OK)
        return CLI_EXIT_FAILURE;

    char err[1024];
    uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES];
    if (anon_sensor_pub_read(o->public_key, pk, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }

    char name[PATH_MAX], path[PATH_MAX], sensors[PATH_MAX];
    snprintf(name, sizeof name, "%s.pub", o->sensor);
    if (!path_join(sensors, o->dir, "sensors") || !path_join(path, sensors, name))
        return CLI_EXIT_FAILURE;
    char other[SENSOR_NAME_MAX + 1];
    if (find_enrolled_key(sensors, pk, other)) {
        fprintf(stderr, "flowveil: error: %s: this public key is enrolled already as sensor %s; "
                        "each sensor needs its own key from `flowveil keys sensor-keygen`\n",
                o->public_key, other);
        return CLI_EXIT_FAILURE;
    }
    char hex[2 * ANON_BOX_PUBLIC_KEY_BYTES + 1], line[128];
    sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
    int n = snprintf(line, sizeof line, "flowveil-sensor-box-v1 %s\n", hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "flowveil: error: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? "; this sensor name is enrolled already" : "");
        return CLI_EXIT_FAILURE;
    }
    bool ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path);
        fprintf(stderr, "flowveil: error: %s: cannot write the public key\n", path);
        return CLI_EXIT_FAILURE;
    }

    char fingerprint[17], params[160];
    key_fingerprint(pk, fingerprint);
    snprintf(params, sizeof params, "sensor=%s key=%s", o->sensor, fingerprint);
    if (authority_log(o->dir, "enroll", params) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("enrolled sensor %s (key %s); it receives keys from the next issue on (epoch %llu)\n",
           o->sensor, fingerprint, (unsigned long long)last_epoch + 1);
    return CLI_EXIT_OK;
}

/* Seal KEY of EPOCH to every sensor in DIR/sensors. *COUNT gets the
 * number of sealed files written. */
static int seal_to_sensors(const authority_options *o, const uint8_t *key, const uint8_t *sign_sk,
                           uint64_t epoch, uint64_t start_s, unsigned *count)
{
    char sensors[PATH_MAX], outbox[PATH_MAX];
    if (!path_join(sensors, o->dir, "sensors") || !path_join(outbox, o->dir, "outbox"))
        return CLI_EXIT_FAILURE;
    DIR *d = opendir(sensors);
    if (d == NULL) {
        fprintf(stderr, "flowveil: error: %s: %s\n", sensors, strerror(errno));
        return CLI_EXIT_FAILURE;
    }

    int status = CLI_EXIT_OK;
    struct dirent *ent;
    while (status == CLI_EXIT_OK && (ent = readdir(d)) != NULL) {
        size_t len = strlen(ent->d_name);
        if (len <= 4 || strcmp(ent->d_name + len - 4, ".pub") != 0)
            continue;
        char sensor[SENSOR_NAME_MAX + 1];
        if (len - 4 > SENSOR_NAME_MAX)
            continue;
        memcpy(sensor, ent->d_name, len - 4);
        sensor[len - 4] = '\0';
        if (!valid_sensor_name(sensor))
            continue;

        char pub_path[PATH_MAX], sensor_dir[PATH_MAX], file[64], sealed_path[PATH_MAX];
        char err[1024];
        uint8_t pk[ANON_BOX_PUBLIC_KEY_BYTES], sealed[ANON_SEALED_BYTES];
        snprintf(file, sizeof file, "epoch-%llu.sealed", (unsigned long long)epoch);
        if (!path_join(pub_path, sensors, ent->d_name) || !path_join(sensor_dir, outbox, sensor) ||
            !path_join(sealed_path, sensor_dir, file)) {
            status = CLI_EXIT_FAILURE;
            break;
        }
        if (anon_sensor_pub_read(pub_path, pk, err, sizeof err) != FV_OK) {
            fprintf(stderr, "flowveil: error: sensor %s: %s; remove it with `flowveil keys "
                            "authority remove --sensor %s` or enroll a new key\n",
                    sensor, err, sensor);
            status = CLI_EXIT_FAILURE;
            break;
        }
        if (anon_seal_epoch(key, epoch, start_s, pk, sign_sk, sealed) != FV_OK) {
            fprintf(stderr, "flowveil: error: sealing epoch %llu to sensor %s failed; remove it "
                            "with `flowveil keys authority remove --sensor %s`\n",
                    (unsigned long long)epoch, sensor, sensor);
            status = CLI_EXIT_FAILURE;
            break;
        }
        if (mkdir(sensor_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "flowveil: error: %s: %s\n", sensor_dir, strerror(errno));
            status = CLI_EXIT_FAILURE;
            break;
        }
        int e = write_file_atomic(sealed_path, sealed, sizeof sealed, 0600);
        if (e != 0) {
            fprintf(stderr, "flowveil: error: %s: cannot write: %s\n", sealed_path, strerror(e));
            status = CLI_EXIT_FAILURE;
            break;
        }
        printf("%s\n", sealed_path);
        (*count)++;
    }
    closedir(d);
    return status;
}

static int authority_issue(const authority_options *o)
{
    uint64_t last_epoch = 0;
    if (read_state(o->dir, &last_epoch) != FV_OK)
        return CLI_EXIT_FAILURE;
    uint64_t epoch = o->epoch != 0 ? o->epoch : last_epoch + 1;
    if (epoch <= last_epoch)
        return cli_usage_error("keys", "--epoch %llu is not after the last issued epoch %llu; "
                                       "sensors reject an epoch that is not newer",
                               (unsigned long long)epoch, (unsigned long long)last_epoch);
    if (epoch > ANON_EPOCH_MAX)
        return cli_usage_error("keys", "epoch %llu is beyond the last possible epoch %llu "
                                       "(2^62-1); start a new authority",
                               (unsigned long long)epoch, (unsigned long long)ANON_EPOCH_MAX);
    if (epoch - last_epoch > ISSUE_MAX_EPOCH_STEP && !o->force)
        return cli_usage_error("keys", "--epoch %llu is %llu epochs past the last issued epoch "
                                       "%llu (at most %u without --force); check the number, "
                                       "or add --force if the jump is intended",
                               (unsigned long long)epoch,
                               (unsigned long long)(epoch - last_epoch),
                               (unsigned long long)last_epoch, ISSUE_MAX_EPOCH_STEP);
    uint64_t start_s = o->start_s != 0 ? o->start_s : fv_now_us() / 1000000u;

    if (sodium_init() < 0) {
        fprintf(stderr, "flowveil: error: libsodium failed to initialize\n");
        return CLI_EXIT_FAILURE;
    }
    /* The epoch key and the signing key exist only here, in guarded
     * memory, until every sealed copy is written. */
    uint8_t *key = sodium_malloc(32 + ANON_SIGN_SECRET_KEY_BYTES);
    if (key == NULL) {
        fprintf(stderr, "flowveil: error: out of memory for the epoch key\n");
        return CLI_EXIT_FAILURE;
    }
    uint8_t *sign_sk = key + 32;
    char err[1024];
    if (anon_authority_sign_key_read(o->dir, sign_sk, err, sizeof err) != FV_OK) {
        sodium_free(key);
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    randombytes_buf(key, 32);
    unsigned count = 0;
    int status = seal_to_sensors(o, key, sign_sk, epoch, start_s, &count);
    sodium_memzero(key, 32 + ANON_SIGN_SECRET_KEY_BYTES);
    sodium_free(key);
    if (status != CLI_EXIT_OK)
        return status;
    if (count == 0) {
        fprintf(stderr, "flowveil: error: no sensor is enrolled in %s; enroll one with "
                        "`flowveil keys authority enroll` first\n",
                o->dir);
        return CLI_EXIT_FAILURE;
    }

    char params[128];
    snprintf(params, sizeof params, "epoch=%llu start=%llu sensors=%u", (unsigned long long)epoch,
             (unsigned long long)start_s, count);
    if (write_state(o->dir, epoch) != FV_OK || authority_log(o->dir, "issue", params) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("epoch %llu sealed to %u sensor%s; the authority kept no copy of the key\n",
           (unsigned long long)epoch, count, count == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

/* Delete the sealed files of epochs before O->before in one sensor's
 * outbox directory. */
static int destroy_in(const char *sensor_dir, uint64_t before, unsigned *count)
{
    DIR *d = opendir(sensor_dir);
    if (d == NULL)
        return CLI_EXIT_OK;
    int status = CLI_EXIT_OK;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        /* Only files named epoch-N.sealed with N < BEFORE. */
        if (strncmp(ent->d_name, "epoch-", 6) != 0 || !isdigit((unsigned char)ent->d_name[6]))
            continue;
        char *end;
        errno = 0;
        unsigned long long epoch = strtoull(ent->d_name + 6, &end, 10);
        if (errno != 0 || strcmp(end, ".sealed") != 0 || epoch >= before)
            continue;
        char path[PATH_MAX];
        if (!path_join(path, sensor_dir, ent->d_name) || unlink(path) != 0) {
            fprintf(stderr, "flowveil: error: %s: cannot delete: %s\n", path, strerror(errno));
            status = CLI_EXIT_FAILURE;
            continue;
        }
        (*count)++;
    }
    closedir(d);
    return status;
}

static int authority_destroy(const authority_options *o)
{
    if (o->before == 0)
        return cli_usage_error("keys", "destroy needs --before EPOCH (epochs before it are "
                                       "destroyed)");
    uint64_t last_epoch = 0;
    if (read_state(o->dir, &last_epoch) != FV_OK)
        return CLI_EXIT_FAILURE;
    if (o->before > last_epoch + 1)
        return cli_usage_error("keys", "--before %llu is after the next epoch %llu; nothing "
                                       "newer than the last issue can be destroyed",
                               (unsigned long long)o->before,
                               (unsigned long long)last_epoch + 1);

    char outbox[PATH_MAX];
    if (!path_join(outbox, o->dir, "outbox"))
        return CLI_EXIT_FAILURE;
    DIR *d = opendir(outbox);
    if (d == NULL) {
        fprintf(stderr, "flowveil: error: %s: %s\n", outbox, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    unsigned count = 0;
    int status = CLI_EXIT_OK;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        char sensor_dir[PATH_MAX];
        if (!valid_sensor_name(ent->d_name) || !path_join(sensor_dir, outbox, ent->d_name))
            continue;
        if (destroy_in(sensor_dir, o->before, &count) != CLI_EXIT_OK)
            status = CLI_EXIT_FAILURE;
    }
    closedir(d);

    char params[128];
    snprintf(params, sizeof params, "before=%llu sealed_files=%u%s",
             (unsigned long long)o->before, count, status == CLI_EXIT_OK ? "" : " incomplete=1");
    if (authority_log(o->dir, "destroy", params) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("destroyed epochs before %llu: %u sealed file%s deleted; the authority holds no "
           "other copy of their keys\n",
           (unsigned long long)o->before, count, count == 1 ? "" : "s");
    return status;
}

/* Un-enroll O->sensor: delete its public key and its sealed files. */
static int authority_remove(const authority_options *o)
{
    if (o->sensor == NULL)
        return cli_usage_error("keys", "remove needs --sensor NAME");
    if (!valid_sensor_name(o->sensor))
        return cli_usage_error("keys", "invalid --sensor '%s': use 1 to %d characters of a-z, "
                                       "0-9, '.', '_' and '-', not starting with '.' or '-'",
                               o->sensor, SENSOR_NAME_MAX);
    uint64_t last_epoch = 0;
    if (read_state(o->dir, &last_epoch) != FV_OK)
        return CLI_EXIT_FAILURE;

    char name[PATH_MAX], sensors[PATH_MAX], pub_path[PATH_MAX], outbox[PATH_MAX];
    char sensor_dir[PATH_MAX];
    snprintf(name, sizeof name, "%s.pub", o->sensor);
    if (!path_join(sensors, o->dir, "sensors") || !path_join(pub_path, sensors, name) ||
        !path_join(outbox, o->dir, "outbox") || !path_join(sensor_dir, outbox, o->sensor))
        return CLI_EXIT_FAILURE;
    if (unlink(pub_path) != 0) {
        fprintf(stderr, "flowveil: error: %s: %s%s\n", pub_path, strerror(errno),
                errno == ENOENT ? "; no sensor of that name is enrolled" : "");
        return CLI_EXIT_FAILURE;
    }
    unsigned count = 0;
    int status = destroy_in(sensor_dir, UINT64_MAX, &count);
    if (status == CLI_EXIT_OK)
        (void)rmdir(sensor_dir);

    char params[160];
    snprintf(params, sizeof params, "sensor=%s sealed_files=%u%s", o->sensor, count,
             status == CLI_EXIT_OK ? "" : " incomplete=1");
    if (authority_log(o->dir, "remove", params) != FV_OK)
        return CLI_EXIT_FAILURE;
    printf("removed sensor %s (%u sealed file%s deleted); later issues skip it\n", o->sensor,
           count, count == 1 ? "" : "s");
    return status;
}

/* ---------------------------------------------------------------------- */
/* Sensor side                                                             */
/* ---------------------------------------------------------------------- */

/* Pin the authority key FILE in DB when it is given. */
static int pin_authority_key(const char *db, const char *file)
{
    if (file == NULL)
        return CLI_EXIT_OK;
    char err[1024];
    if (anon_authority_pin(db, file, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/*
 * Check that the sealed file SEALED (LEN bytes) read from SEALED_PATH is
 * signed by the authority key FILE given with --authority-key. When it
 * is not, the message blames the key when the key pinned in DB verifies
 * the file, the file when the given key is the pinned one, and either
 * of the two when nothing is pinned yet.
 */
static int check_given_authority_key(const char *db, const char *file, const char *sealed_path,
                                     const uint8_t *sealed, size_t len)
{
    char err[1024];
    uint8_t given[ANON_SIGN_PUBLIC_KEY_BYTES], pinned[ANON_SIGN_PUBLIC_KEY_BYTES];
    if (anon_authority_pub_read(file, given, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    int rc = anon_sealed_verify(sealed, len, given);
    if (rc == FV_OK)
        return CLI_EXIT_OK;
    if (rc == FV_ERR_PARSE) {
        fprintf(stderr, "flowveil: error: %s: not a sealed epoch file (expected %d bytes, got "
                        "%zu); use a file that `flowveil keys authority issue` wrote\n",
                sealed_path, ANON_SEALED_BYTES, len);
        return CLI_EXIT_FAILURE;
    }

    char pinned_path[4096], pinned_err[1024];
    bool have_pin = (size_t)snprintf(pinned_path, sizeof pinned_path, "%s/%s", db,
                                     ANON_AUTHORITY_PUB_FILE) < sizeof pinned_path &&
                    anon_authority_pub_read(pinned_path, pinned, pinned_err,
                                            sizeof pinned_err) == FV_OK;
    if (have_pin && sodium_memcmp(given, pinned, sizeof given) != 0 &&
        anon_sealed_verify(sealed, len, pinned) == FV_OK) {
        fprintf(stderr, "flowveil: error: --authority-key %s is not the key that signed %s; the "
                        "key pinned in %s did sign it, so leave --authority-key out\n",
                file, sealed_path, pinned_path);
    } else if (have_pin && sodium_memcmp(given, pinned, sizeof given) == 0) {
        fprintf(stderr, "flowveil: error: %s is not signed by the pinned authority key %s; it "
                        "was forged or damaged, so ask the authority to issue it again\n",
                sealed_path, file);
    } else {
        fprintf(stderr, "flowveil: error: %s is not signed by the authority key %s; either "
                        "--authority-key names the wrong file (use the authority's %s) or the "
                        "sealed file is damaged; nothing was imported or pinned\n",
                sealed_path, file, ANON_AUTHORITY_PUB_FILE);
    }
    return CLI_EXIT_FAILURE;
}

static int sensor_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"authority-key", required_argument, NULL, OPT_AUTHORITY_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *authority_key = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case OPT_AUTHORITY_KEY: authority_key = optarg; break;
        case 'h': printf("%s", SENSOR_USAGE); return CLI_EXIT_OK;
        case ':': return cli_usage_error("keys", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("keys", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("keys", "unexpected argument '%s'", argv[optind]);
    if (db == NULL)
        return cli_usage_error("keys", "missing --db DIR (the sensor's store directory)");

    char err[1024];
    if (authority_key != NULL) {
        /* Check the file before the key pair exists, so a typo leaves
         * nothing behind. */
        uint8_t authority_pk[ANON_SIGN_PUBLIC_KEY_BYTES];
        if (anon_authority_pub_read(authority_key, authority_pk, err, sizeof err) != FV_OK) {
            fprintf(stderr, "flowveil: error: %s\n", err);
            return CLI_EXIT_FAILURE;
        }
    }
    if (anon_sensor_keygen(db, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    if (pin_authority_key(db, authority_key) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    printf("sensor key: %s/%s (mode 0600)\n"
           "public key: %s/%s (enroll it with `flowveil keys authority enroll`)\n"
           "this store now takes its epoch keys from the authority only\n",
           db, ANON_SENSOR_KEY_FILE, db, ANON_SENSOR_PUB_FILE);
    return CLI_EXIT_OK;
}

static int sensor_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, 'd'},
        {"authority-key", required_argument, NULL, OPT_AUTHORITY_KEY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *authority_key = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case OPT_AUTHORITY_KEY: authority_key = optarg; break;
        case 'h': printf("%s", SENSOR_USAGE); return CLI_EXIT_OK;
        case ':': return cli_usage_error("keys", "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error("keys", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (db == NULL)
        return cli_usage_error("keys", "missing --db DIR (the sensor's store directory)");
    if (optind + 1 != argc)
        return cli_usage_error("keys", "expected one SEALED_FILE after the options");
    const char *sealed_path = argv[optind];

    char err[1024];
    uint8_t sealed[ANON_SEALED_BYTES + 1];
    FILE *f = fv_fopen_regular_file(sealed_path, err, sizeof err);
    if (f == NULL) {
        fprintf(stderr, "flowveil: error: sealed epoch file: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    size_t len = fread(sealed, 1, sizeof sealed, f);
    fclose(f);

    /* Pin --authority-key only once the sealed file verifies under it,
     * so a mistyped key file leaves no wrong pin behind. */
    if (authority_key != NULL &&
        check_given_authority_key(db, authority_key, sealed_path, sealed, len) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    if (pin_authority_key(db, authority_key) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;

    anon_epoch_info info;
    if (anon_import_sealed(db, sealed, len, &info, err, sizeof err) != FV_OK) {
        fprintf(stderr, "flowveil: error: %s: %s\n", sealed_path, err);
        return CLI_EXIT_FAILURE;
    }

    /* Record the import in the store's audit trail (creating the store
     * when this is the sensor's first key). */
    store_env *store = NULL;
    if (store_open(db, 0, &store, err, sizeof err) == FV_OK) {
        char actor[64], params[64];
        cli_audit_local_actor(actor, sizeof actor);
        snprintf(params, sizeof params, "epoch=%llu", (unsigned long long)info.epoch_id);
        (void)cli_audit_append(store, actor, "keys.import", "pseudonym.key", params, 0,
                               fv_now_us());
        (void)store_commit(store);
        store_close(&store);
    } else {
        fprintf(stderr, "flowveil: warning: the key was imported, but the audit entry could not "
                        "be written: %s\n",
                err);
    }
    char start[FV_TIME_TEXT_MAX];
    fv_time_format(info.start_s * 1000000u, start);
    printf("imported epoch %llu (started %s) into %s/pseudonym.key\n",
           (unsigned long long)info.epoch_id, start, db);
    return CLI_EXIT_OK;
}

int cli_cmd_keys_authority(int argc, char **argv)
{
    /* argv[0] is "keys", argv[1] the subcommand. */
    if (argc >= 2 && strcmp(argv[1], "sensor-keygen") == 0)
        return sensor_keygen(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "import") == 0)
        return sensor_import(argc - 1, argv + 1);
    if (argc < 3 || strcmp(argv[1], "authority") != 0) {
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf("%s", AUTHORITY_USAGE);
            return CLI_EXIT_OK;
        }
        return cli_usage_error("keys", "expected 'flowveil keys authority init|enroll|issue|"
                                       "destroy|remove --dir DIR ...'");
    }

    const char *action = argv[2];
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0) {
        printf("%s", AUTHORITY_USAGE);
        return CLI_EXIT_OK;
    }
    authority_options o;
    int status = parse_authority_options(argc - 2, argv + 2, &o);
    if (status >= 0)
        return status;
    if (strcmp(action, "init") == 0)
        return authority_init(&o);
    if (strcmp(action, "enroll") == 0)
        return authority_enroll(&o);
    if (strcmp(action, "issue") == 0)
        return authority_issue(&o);
    if (strcmp(action, "destroy") == 0)
        return authority_destroy(&o);
    if (strcmp(action, "remove") == 0)
        return authority_remove(&o);
    return cli_usage_error("keys", "unknown authority action '%s': expected init, enroll, issue, "
                                   "destroy or remove",
                           action);
}
