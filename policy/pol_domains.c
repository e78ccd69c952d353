/*
 * pol_domains.c: the accessors of the domains section (mode and
 * never-record suffixes).
 */
#include "policy.h"

#include <string.h>
#include <strings.h>

#include "pol_internal.h"

pol_domain_mode pol_domain_mode_get(const pol_policy *policy)
{
    return policy != NULL ? policy->domain_mode : POL_DOMAINS_KEEP;
}

const char *pol_domain_mode_name(pol_domain_mode mode)
{
    switch (mode) {
    case POL_DOMAINS_REGISTRABLE:
        return "registrable";
    case POL_DOMAINS_PSEUDONYMIZE:
        return "pseudonymize";
    case POL_DOMAINS_KEEP:
    default:
        return "keep";
    }
}

bool pol_domain_never_record(const pol_policy *policy, const char *name)
{
    if (policy == NULL || name == NULL || policy->never_record_count == 0)
        return false;

    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    /* NOTE: a linear scan, which costs about one comparison per listed
     * suffix per name; the list is capped at POL_MAX_NEVER_RECORD. */
    for (size_t i = 0; i < policy->never_record_count; i++) {
        const char *suffix = policy->never_record[i];
        size_t s = strlen(suffix);
        if (s > n || strncasecmp(name + n - s, suffix, s) != 0)
            continue;
        /* Match on a label boundary only: "notexample.org" is not under
         * "example.org". */
        if (s == n || name[n - s - 1] == '.')
            return true;
    }
    return false;
}

size_t pol_never_record_count(const pol_policy *policy)
{
    return policy != NULL ? policy->never_record_count : 0;
}

const char *pol_never_record_suffix(const pol_policy *policy, size_t i)
{
    if (policy == NULL || i >= policy->never_record_count)
        return NULL;
    return policy->never_record[i];
}

void pol_summary_domains(const pol_policy *policy, struct pol_text *t)
{
    switch (policy->domain_mode) {
    case POL_DOMAINS_REGISTRABLE:
        pol_text_add(t, "Domain names (DNS, TLS server names, HTTP hosts) are cut to their"
                        " registrable domain (www.example.co.uk becomes example.co.uk).\n");
        break;
    case POL_DOMAINS_PSEUDONYMIZE:
        pol_text_add(t, "Domain names (DNS, TLS server names, HTTP hosts) are replaced by keyed"
                        " pseudonyms under the same key as addresses.\n");
        break;
    case POL_DOMAINS_KEEP:
    default:
        pol_text_add(t, "Domain names (DNS, TLS server names, HTTP hosts) are stored as seen.\n");
        break;
    }
    if (policy->never_record_count == 0)
        return;
    pol_text_add(t, "Never recorded (DNS, TLS and HTTP records naming these domains or names"
                    " below them are dropped and only counted): ");
    for (size_t i = 0; i < policy->never_record_count; i++)
        pol_text_add(t, "%s%s", i == 0 ? "" : ", ", policy->never_record[i]);
    if (policy->never_record_category_count > 0) {
        pol_text_add(t, " (including the categories ");
        for (size_t i = 0; i < policy->never_record_category_count; i++)
            pol_text_add(t, "%s%s", i == 0 ? "" : ", ", policy->never_record_categories[i]);
        pol_text_add(t, ")");
    }
    pol_text_add(t, "\n");
}
