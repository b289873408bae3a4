/*
 * A Kafka-protocol test cluster: librdkafka's mock cluster behind a line protocol on stdin.
 *
 *   kafka-mock-broker [--brokers N] [--topic name:partitions]...
 *
 * Prints `BOOTSTRAP host:port,host:port,...` once the cluster listens, then answers every
 * command line with exactly one line, `OK` or `ERR <message>`:
 *
 *   topic <name> <partitions>            create a topic (the mock has no CreateTopics API)
 *   broker-down <id> / broker-up <id>    drop and refuse connections / accept them again;
 *                                        leadership does not move on its own
 *   rtt <brokerId> <ms>                  delay every response of that broker
 *   errors <apiKey> <errCode> [<count>]  the next <count> (default 1) requests of that API
 *                                        fail with <errCode> (-195 = disconnect the client)
 *   clear-errors <apiKey>                drop the errors still pushed for that API
 *   topic-error <topic> <errCode>        Metadata answers this error for the topic (0 clears)
 *   leader <topic> <partition> <id>      move the partition's leader (-1 = leaderless)
 *   quit                                 destroy the cluster and exit
 *
 * End of stdin means quit, so the cluster dies with the process that started it.
 * Broker ids run from 1 to N. A bad command gets ERR and changes nothing.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_LINE 4096
#define MAX_TOPICS 1024
#define MAX_ERROR_COUNT 100000
#define MAX_PARTITIONS 10000

struct topic {
        char *name;
        int partitions;
};

static rd_kafka_t *rk;
static rd_kafka_mock_cluster_t *mcluster;
static int broker_cnt = 3;
static struct topic topics[MAX_TOPICS];
static int topic_cnt;

static void reply_ok(void) {
        fputs("OK\n", stdout);
        fflush(stdout);
}

static void reply_err(const char *fmt, ...) {
        va_list ap;
        fputs("ERR ", stdout);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
}

/* Parses a whole base-10 integer within [min, max]; anything else is rejected. */
static int parse_int(const char *s, long min, long max, long *out) {
        char *end;
        long v;
        if (!s || !*s)
                return 0;
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return 0;
        *out = v;
        return 1;
}

static struct topic *find_topic(const char *name) {
        for (int i = 0; i < topic_cnt; i++)
                if (!strcmp(topics[i].name, name))
                        return &topics[i];
        return NULL;
}

static int valid_topic_name(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > 249 || !strcmp(name, ".") || !strcmp(name, ".."))
                return 0;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
                        return 0;
        return 1;
}

/* Returns NULL on success, else a static message. */
static const char *create_topic(const char *name, long partitions) {
        static char msg[512];
        rd_kafka_resp_err_t err;
        int replication = broker_cnt < 3 ? broker_cnt : 3;

        if (!valid_topic_name(name))
                return "invalid topic name (use [a-zA-Z0-9._-], at most 249 characters)";
        if (partitions < 1 || partitions > MAX_PARTITIONS)
                return "partitions must be between 1 and 10000";
        if (find_topic(name))
                return "topic already exists";
        if (topic_cnt == MAX_TOPICS)
                return "too many topics";

        err = rd_kafka_mock_topic_create(mcluster, name, (int)partitions, replication);
        if (err) {
                snprintf(msg, sizeof(msg), "cannot create topic %s: %s", name,
                         rd_kafka_err2str(err));
                return msg;
        }
        topics[topic_cnt].name       = strdup(name);
        topics[topic_cnt].partitions = (int)partitions;
        topic_cnt++;
        return NULL;
}

#define NEED_ARGS(n, usage)                                                    \
        do {                                                                   \
                if (argc != (n)) {                                             \
                        reply_err("usage: %s", usage);                         \
                        return 0;                                              \
                }                                                              \
        } while (0)

#define PARSE(idx, min, max, var, what)                                        \
        do {                                                                   \
                if (!parse_int(argv[idx], (min), (max), &(var))) {             \
                        reply_err("%s must be an integer in [%ld, %ld]: %s",   \
                                  what, (long)(min), (long)(max), argv[idx]);  \
                        return 0;                                              \
                }                                                              \
        } while (0)

static void reply_result(rd_kafka_resp_err_t err) {
        if (err)
                reply_err("%s", rd_kafka_err2str(err));
        else
                reply_ok();
}

/* Runs one command; returns 1 when the program should exit. */
static int run_command(int argc, char **argv) {
        const char *cmd = argv[0];
        long a, b, c;

        if (!strcmp(cmd, "quit")) {
                NEED_ARGS(1, "quit");
                reply_ok();
                return 1;

        } else if (!strcmp(cmd, "topic")) {
                const char *why;
                NEED_ARGS(3, "topic <name> <partitions>");
                PARSE(2, 1, MAX_PARTITIONS, a, "partitions");
                why = create_topic(argv[1], a);
                if (why)
                        reply_err("%s", why);
                else
                        reply_ok();

        } else if (!strcmp(cmd, "broker-down") || !strcmp(cmd, "broker-up")) {
                NEED_ARGS(2, "broker-down|broker-up <brokerId>");
                PARSE(1, 1, broker_cnt, a, "brokerId");
                reply_result(cmd[7] == 'd'
                                 ? rd_kafka_mock_broker_set_down(mcluster, (int32_t)a)
                                 : rd_kafka_mock_broker_set_up(mcluster, (int32_t)a));

        } else if (!strcmp(cmd, "rtt")) {
                NEED_ARGS(3, "rtt <brokerId> <ms>");
                PARSE(1, 1, broker_cnt, a, "brokerId");
                PARSE(2, 0, 600000, b, "ms");
                reply_result(rd_kafka_mock_broker_set_rtt(mcluster, (int32_t)a, (int)b));

        } else if (!strcmp(cmd, "errors")) {
                rd_kafka_resp_err_t *errs;
                if (argc != 3 && argc != 4) {
                        reply_err("usage: errors <apiKey> <errCode> [<count>]");
                        return 0;
                }
                PARSE(1, 0, 1000, a, "apiKey");
                PARSE(2, -200, 1000, b, "errCode");
                c = 1;
                if (argc == 4)
                        PARSE(3, 1, MAX_ERROR_COUNT, c, "count");
                errs = malloc(sizeof(*errs) * (size_t)c);
                if (!errs) {
                        reply_err("out of memory");
                        return 0;
                }
                for (long i = 0; i < c; i++)
                        errs[i] = (rd_kafka_resp_err_t)b;
                rd_kafka_mock_push_request_errors_array(mcluster, (int16_t)a, (size_t)c,
                                                        errs);
                free(errs);
                reply_ok();

        } else if (!strcmp(cmd, "clear-errors")) {
                NEED_ARGS(2, "clear-errors <apiKey>");
                PARSE(1, 0, 1000, a, "apiKey");
                rd_kafka_mock_clear_request_errors(mcluster, (int16_t)a);
                reply_ok();

        } else if (!strcmp(cmd, "topic-error")) {
                NEED_ARGS(3, "topic-error <topic> <errCode>");
                if (!find_topic(argv[1])) {
                        reply_err("unknown topic %s (create it with `topic`)", argv[1]);
                        return 0;
                }
                PARSE(2, -200, 1000, b, "errCode");
                rd_kafka_mock_topic_set_error(mcluster, argv[1], (rd_kafka_resp_err_t)b);
                reply_ok();

        } else if (!strcmp(cmd, "leader")) {
                struct topic *t;
                NEED_ARGS(4, "leader <topic> <partition> <brokerId>");
                /* set_leader would silently create an unknown topic: refuse instead. */
                t = find_topic(argv[1]);
                if (!t) {
                        reply_err("unknown topic %s (create it with `topic`)", argv[1]);
                        return 0;
                }
                PARSE(2, 0, t->partitions - 1, a, "partition");
                if (!parse_int(argv[3], -1, broker_cnt, &b) || b == 0) {
                        reply_err("brokerId must be -1 or in [1, %d]: %s", broker_cnt,
                                  argv[3]);
                        return 0;
                }
                reply_result(rd_kafka_mock_partition_set_leader(mcluster, argv[1],
                                                                (int32_t)a, (int32_t)b));

        } else {
                reply_err("unknown command: %s", cmd);
        }
        return 0;
}

static void usage_exit(const char *why) {
        fprintf(stderr, "kafka-mock-broker: %s\n"
                        "usage: kafka-mock-broker [--brokers N] [--topic name:partitions]...\n",
                why);
        exit(2);
}

/* The mock logs through this handle; only warnings and worse reach stderr. */
static void log_cb(const rd_kafka_t *r, int level, const char *fac, const char *buf) {
        (void)r;
        if (level <= 4)
                fprintf(stderr, "kafka-mock-broker: %s: %s\n", fac, buf);
}

int main(int argc, char **argv) {
        char errstr[512];
        char line[MAX_LINE];
        rd_kafka_conf_t *conf;
        long v;

        signal(SIGPIPE, SIG_IGN);

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
                        if (!parse_int(argv[++i], 1, 32, &v))
                                usage_exit("--brokers must be an integer in [1, 32]");
                        broker_cnt = (int)v;
                } else if (!strcmp(argv[i], "--topic") && i + 1 < argc) {
                        i++; /* handled after the cluster exists */
                } else {
                        usage_exit("unknown argument");
                }
        }

        conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_cb);
        /* The handle only hosts the cluster; it never connects anywhere itself. */
        if (rd_kafka_conf_set(conf, "bootstrap.servers", "", errstr, sizeof(errstr)))
                usage_exit(errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "kafka-mock-broker: rd_kafka_new: %s\n", errstr);
                return 1;
        }
        mcluster = rd_kafka_mock_cluster_new(rk, broker_cnt);
        if (!mcluster) {
                fprintf(stderr, "kafka-mock-broker: cannot create the mock cluster\n");
                return 1;
        }

        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--topic")) {
                        char *spec = argv[++i];
                        char *colon = strrchr(spec, ':');
                        const char *why;
                        if (!colon || !parse_int(colon + 1, 1, MAX_PARTITIONS, &v))
                                usage_exit("--topic wants name:partitions");
                        *colon = '\0';
                        why    = create_topic(spec, v);
                        if (why)
                                usage_exit(why);
                } else if (!strcmp(argv[i], "--brokers")) {
                        i++;
                }
        }

        printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);

        while (fgets(line, sizeof(line), stdin)) {
                char *args[16];
                int n = 0;
                char *save, *tok;
                size_t len = strlen(line);

                if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
                        int ch;
                        while ((ch = getchar()) != EOF && ch != '\n')
                                ;
                        reply_err("line too long");
                        continue;
                }
                for (tok = strtok_r(line, " \t\r\n", &save); tok;
                     tok = strtok_r(NULL, " \t\r\n", &save)) {
                        if (n == (int)(sizeof(args) / sizeof(args[0]))) {
                                n = -1;
                                break;
                        }
                        args[n++] = tok;
                }
                if (n < 0) {
                        reply_err("too many arguments");
                        continue;
                }
                if (n == 0) {
                        reply_err("empty command");
                        continue;
                }
                if (run_command(n, args))
                        break;
        }

        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        for (int i = 0; i < topic_cnt; i++)
                free(topics[i].name);
        return 0;
}
