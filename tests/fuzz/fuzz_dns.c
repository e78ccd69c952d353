/* Fuzz the DNS message parser (cap_dns_parse): header, questions with
 * compression pointers and the answer section. */
#include <string.h>

#include "cap_proto.h"
#include "fuzz_util.h"

static volatile size_t sink_bytes;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cap_dns_msg msg;

    memset(&msg, 0, sizeof msg);
    if (cap_dns_parse(data, size, &msg) == FV_OK) {
        sink_bytes += strlen(msg.qname);
        for (unsigned i = 0; i < msg.question_count && i < FV_DNS_QUESTIONS_MAX; i++)
            sink_bytes += strlen(msg.questions[i].name);
        for (unsigned i = 0; i < msg.cname_count && i < FV_DNS_CNAMES_MAX; i++)
            sink_bytes += strlen(msg.cnames[i]);
    }
    return 0;
}
