/* A freeDiameter extension that acts as a DCCA client (the role of a PGW or an IMS node): once the peer
 * ocs.openbss.local is open it sends, one after the other, the credit-control requests of a voice session
 * (INITIAL, UPDATE, TERMINATE) and an SMS EVENT, encoded by freeDiameter with its DCCA dictionary, and writes one
 * line per answer: "<step> <Result-Code> <granted units or -1>". Debian ships no such extension (no test_app).
 *
 * Its configuration file: the output file, the subscriber's MSISDN and a Session-Id prefix, one a line.
 * Built by the test: cc -shared -fPIC -o test_ccr.fdx test_ccr.c */
#include <freeDiameter/extension.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char out_path[512], msisdn[64], prefix[128], voice[200], sms[200];
static FILE *out;
static pthread_t worker;
static sem_t answered;
static struct dict_object *d_ccr, *d_app, *d_session_id, *d_dest_realm, *d_auth_app, *d_context, *d_type, *d_number,
    *d_sub, *d_sub_type, *d_sub_data, *d_mscc, *d_rg, *d_rsu, *d_usu, *d_time, *d_ssu, *d_action, *d_cause,
    *d_result, *d_gsu;

static int find_avp(const char *name, struct dict_object **where)
{
	return fd_dict_search(fd_g_config->cnf_dict, DICT_AVP, AVP_BY_NAME, name, where, ENOENT);
}

static struct avp *avp_u32(struct dict_object *model, uint32_t v)
{
	struct avp *a = NULL;
	union avp_value val;
	memset(&val, 0, sizeof(val));
	val.u32 = v;
	if (fd_msg_avp_new(model, 0, &a) || fd_msg_avp_setvalue(a, &val)) return NULL;
	return a;
}

static struct avp *avp_i32(struct dict_object *model, int32_t v)
{
	struct avp *a = NULL;
	union avp_value val;
	memset(&val, 0, sizeof(val));
	val.i32 = v;
	if (fd_msg_avp_new(model, 0, &a) || fd_msg_avp_setvalue(a, &val)) return NULL;
	return a;
}

static struct avp *avp_u64(struct dict_object *model, uint64_t v)
{
	struct avp *a = NULL;
	union avp_value val;
	memset(&val, 0, sizeof(val));
	val.u64 = v;
	if (fd_msg_avp_new(model, 0, &a) || fd_msg_avp_setvalue(a, &val)) return NULL;
	return a;
}

static struct avp *avp_str(struct dict_object *model, const char *s)
{
	struct avp *a = NULL;
	union avp_value val;
	memset(&val, 0, sizeof(val));
	val.os.data = (uint8_t *)s;
	val.os.len = strlen(s);
	if (fd_msg_avp_new(model, 0, &a) || fd_msg_avp_setvalue(a, &val)) return NULL;
	return a;
}

static struct avp *group(struct dict_object *model)
{
	struct avp *a = NULL;
	if (fd_msg_avp_new(model, 0, &a)) return NULL;
	return a;
}

/* the granted units of the first MSCC: CC-Time or CC-Service-Specific-Units, -1 when none */
static long long granted(struct msg *ans)
{
	struct avp *mscc = NULL, *child = NULL, *unit = NULL;
	struct avp_hdr *hdr = NULL;
	if (fd_msg_search_avp(ans, d_mscc, &mscc) || !mscc) return -1;
	if (fd_msg_browse(mscc, MSG_BRW_FIRST_CHILD, &child, NULL)) return -1;
	while (child) {
		if (!fd_msg_avp_hdr(child, &hdr) && hdr->avp_code == 431 /* Granted-Service-Unit */) {
			if (fd_msg_browse(child, MSG_BRW_FIRST_CHILD, &unit, NULL)) return -1;
			while (unit) {
				if (!fd_msg_avp_hdr(unit, &hdr) && hdr->avp_value) {
					if (hdr->avp_code == 420) return hdr->avp_value->u32;
					if (hdr->avp_code == 417) return (long long)hdr->avp_value->u64;
				}
				if (fd_msg_browse(unit, MSG_BRW_NEXT, &unit, NULL)) return -1;
			}
		}
		if (fd_msg_browse(child, MSG_BRW_NEXT, &child, NULL)) return -1;
	}
	return -1;
}

static void on_answer(void *data, struct msg **msg)
{
	struct avp *rc = NULL;
	struct avp_hdr *hdr = NULL;
	long result = -1;
	if (!fd_msg_search_avp(*msg, d_result, &rc) && rc && !fd_msg_avp_hdr(rc, &hdr) && hdr->avp_value)
		result = hdr->avp_value->u32;
	fprintf(out, "%s %ld %lld\n", (const char *)data, result, granted(*msg));
	fflush(out);
	fd_msg_free(*msg);
	*msg = NULL;
	sem_post(&answered);
}

static int send_ccr(const char *step, const char *session, int32_t type, uint32_t number, const char *context,
		    uint32_t rating_group, long requested, long used, int event)
{
	struct msg *req = NULL;
	struct avp *sub, *mscc, *units;
	CHECK_FCT(fd_msg_new(d_ccr, MSGFL_ALLOC_ETEID, &req));
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_FIRST_CHILD, avp_str(d_session_id, session)));
	CHECK_FCT(fd_msg_add_origin(req, 0));
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_str(d_dest_realm, "openbss.local")));
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_u32(d_auth_app, 4)));
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_str(d_context, context)));
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_i32(d_type, type)));
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_u32(d_number, number)));
	if (type == 1 || type == 4) {
		sub = group(d_sub);
		CHECK_FCT(fd_msg_avp_add(sub, MSG_BRW_LAST_CHILD, avp_i32(d_sub_type, 0)));
		CHECK_FCT(fd_msg_avp_add(sub, MSG_BRW_LAST_CHILD, avp_str(d_sub_data, msisdn)));
		CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, sub));
	}
	if (type == 4) CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_i32(d_action, 0)));
	if (type == 3) CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, avp_i32(d_cause, 1)));
	mscc = group(d_mscc);
	CHECK_FCT(fd_msg_avp_add(mscc, MSG_BRW_LAST_CHILD, avp_u32(d_rg, rating_group)));
	if (requested >= 0) {
		units = group(d_rsu);
		CHECK_FCT(fd_msg_avp_add(units, MSG_BRW_LAST_CHILD,
					 event ? avp_u64(d_ssu, (uint64_t)requested) : avp_u32(d_time, (uint32_t)requested)));
		CHECK_FCT(fd_msg_avp_add(mscc, MSG_BRW_LAST_CHILD, units));
	}
	if (used >= 0) {
		units = group(d_usu);
		CHECK_FCT(fd_msg_avp_add(units, MSG_BRW_LAST_CHILD, avp_u32(d_time, (uint32_t)used)));
		CHECK_FCT(fd_msg_avp_add(mscc, MSG_BRW_LAST_CHILD, units));
	}
	CHECK_FCT(fd_msg_avp_add(req, MSG_BRW_LAST_CHILD, mscc));
	CHECK_FCT(fd_msg_send(&req, on_answer, (void *)step));
	sem_wait(&answered);
	return 0;
}

static void *run(void *arg)
{
	struct peer_hdr *peer = NULL;
	int i;
	(void)arg;
	fd_core_waitstartcomplete();
	for (i = 0; i < 600; i++) { /* up to 60 s for the capabilities exchange */
		if (!fd_peer_getbyid("ocs.openbss.local", strlen("ocs.openbss.local"), 0, &peer) && peer
		    && fd_peer_get_state(peer) == STATE_OPEN)
			break;
		usleep(100000);
	}
	fprintf(out, "OPEN %d\n", peer && fd_peer_get_state(peer) == STATE_OPEN);
	fflush(out);
	send_ccr("INITIAL", voice, 1, 0, "32260@3gpp.org", 1, 60, -1, 0);
	send_ccr("UPDATE", voice, 2, 1, "32260@3gpp.org", 1, 60, 60, 0);
	send_ccr("TERMINATE", voice, 3, 2, "32260@3gpp.org", 1, -1, 15, 0);
	send_ccr("EVENT", sms, 4, 0, "32274@3gpp.org", 3, 1, -1, 1);
	send_ccr("LATE", voice, 2, 3, "32260@3gpp.org", 1, 10, 1, 0);
	fprintf(out, "DONE\n");
	fflush(out);
	return NULL;
}

static int entry(char *conffile)
{
	FILE *conf;
	struct dict_object *vendor = NULL;
	TRACE_ENTRY("%p", conffile);
	conf = fopen(conffile, "r");
	if (!conf || fscanf(conf, "%511s %63s %127s", out_path, msisdn, prefix) != 3) return EINVAL;
	fclose(conf);
	snprintf(voice, sizeof(voice), "%s;voice", prefix);
	snprintf(sms, sizeof(sms), "%s;sms", prefix);
	out = fopen(out_path, "w");
	if (!out) return errno;
	CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_COMMAND, CMD_BY_NAME, "Credit-Control-Request", &d_ccr,
				 ENOENT));
	{
		application_id_t dcca = 4;
		CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_APPLICATION, APPLICATION_BY_ID, &dcca, &d_app,
					 ENOENT));
	}
	CHECK_FCT(find_avp("Session-Id", &d_session_id));
	CHECK_FCT(find_avp("Destination-Realm", &d_dest_realm));
	CHECK_FCT(find_avp("Auth-Application-Id", &d_auth_app));
	CHECK_FCT(find_avp("Service-Context-Id", &d_context));
	CHECK_FCT(find_avp("CC-Request-Type", &d_type));
	CHECK_FCT(find_avp("CC-Request-Number", &d_number));
	CHECK_FCT(find_avp("Subscription-Id", &d_sub));
	CHECK_FCT(find_avp("Subscription-Id-Type", &d_sub_type));
	CHECK_FCT(find_avp("Subscription-Id-Data", &d_sub_data));
	CHECK_FCT(find_avp("Multiple-Services-Credit-Control", &d_mscc));
	CHECK_FCT(find_avp("Rating-Group", &d_rg));
	CHECK_FCT(find_avp("Requested-Service-Unit", &d_rsu));
	CHECK_FCT(find_avp("Used-Service-Unit", &d_usu));
	CHECK_FCT(find_avp("Granted-Service-Unit", &d_gsu));
	CHECK_FCT(find_avp("CC-Time", &d_time));
	CHECK_FCT(find_avp("CC-Service-Specific-Units", &d_ssu));
	CHECK_FCT(find_avp("Requested-Action", &d_action));
	CHECK_FCT(find_avp("Termination-Cause", &d_cause));
	CHECK_FCT(find_avp("Result-Code", &d_result));
	/* advertise DCCA (Auth-Application-Id 4) in our CER */
	CHECK_FCT(fd_disp_app_support(d_app, vendor, 1, 0));
	sem_init(&answered, 0, 0);
	CHECK_POSIX(pthread_create(&worker, NULL, run, NULL));
	return 0;
}

void fd_ext_fini(void)
{
	if (out) fclose(out);
}

EXTENSION_ENTRY("test_ccr", entry, "dict_dcca");
