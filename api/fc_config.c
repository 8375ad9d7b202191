/* fc_config.c: Firecracker's configuration objects, checked field by field (fc_config.h). */
#include "fc_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/layout.h"
#include "util/util.h"

enum ftype { F_STRING, F_BOOL, F_UINT, F_OBJECT, F_ARRAY, F_ANY };

/* One field of a body: its JSON type and whether the body must have it. A null value counts
 * as absent for optional fields, as Firecracker's (serde's) Option fields do. */
struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *type_name(enum ftype t)
{
	static const char *const names[] = {"a string", "a boolean", "a non-negative integer",
					    "an object", "an array", "a value"};
	return names[t];
}

static bool type_ok(json_t *v, enum ftype t)
{
	switch (t) {
	case F_STRING: return json_is_string(v);
	case F_BOOL: return json_is_boolean(v);
	case F_UINT: return json_is_integer(v) && json_integer_value(v) >= 0;
	case F_OBJECT: return json_is_object(v);
	case F_ARRAY: return json_is_array(v);
	case F_ANY: return true;
	}
	return false;
}

/* The body is an object with no field outside (fields), every required one present, each of
 * the right type: Firecracker refuses unknown fields (serde deny_unknown_fields). */
static int check_object(json_t *body, const char *what, const struct field *fields, size_t n,
			char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(body))
		return fail(err, errlen, "%s: the body must be a JSON object", what);
	json_object_foreach(body, key, v) {
		size_t i;

		for (i = 0; i < n && strcmp(fields[i].name, key); i++)
			;
		if (i == n)
			return fail(err, errlen, "%s: unknown field '%s'", what, key);
		if (json_is_null(v) && !fields[i].required)
			continue;
		if (!type_ok(v, fields[i].type))
			return fail(err, errlen, "%s: '%s' must be %s", what, key,
				    type_name(fields[i].type));
	}
	for (size_t i = 0; i < n; i++)
		if (fields[i].required && !json_object_get(body, fields[i].name))
			return fail(err, errlen, "%s: missing field '%s'", what, fields[i].name);
	return 0;
}

/* The field's value, or NULL when absent or null. */
static json_t *get(json_t *body, const char *name)
{
	json_t *v = json_object_get(body, name);

	return v && !json_is_null(v) ? v : NULL;
}

static const char *get_str(json_t *body, const char *name)
{
	json_t *v = get(body, name);

	return v ? json_string_value(v) : NULL;
}

static bool get_bool(json_t *body, const char *name, bool dflt)
{
	json_t *v = get(body, name);

	return v ? json_is_true(v) : dflt;
}

/* A path or argument string: no NUL inside (JSON allows \u0000), not empty, bounded. */
static int check_text(const char *what, const char *field, json_t *body, size_t max, char *err,
		      size_t errlen)
{
	json_t *v = get(body, field);

	if (!v)
		return 0;
	if (json_string_length(v) != strlen(json_string_value(v)))
		return fail(err, errlen, "%s: '%s' contains a NUL character", what, field);
	if (!json_string_length(v))
		return fail(err, errlen, "%s: '%s' is empty", what, field);
	if (json_string_length(v) > max)
		return fail(err, errlen, "%s: '%s' is longer than %zu bytes", what, field, max);
	return 0;
}

/* host_dev_name (a string already): a TAP's name, 1 to 15 characters, no '/' or NUL. */
static int check_tap(const char *what, json_t *body, char *err, size_t errlen)
{
	const char *tap = get_str(body, "host_dev_name");

	if (!*tap || strlen(tap) > MVM_TAP_NAME_MAX || strchr(tap, '/') ||
	    json_string_length(get(body, "host_dev_name")) != strlen(tap))
		return fail(err, errlen, "%s: host_dev_name '%s' is not a TAP name (1 to %d "
			    "characters, no '/')", what, tap, MVM_TAP_NAME_MAX);
	return 0;
}

/* Firecracker's ids: 1 to 64 of [A-Za-z0-9_]. */
static int check_id(const char *what, const char *id, char *err, size_t errlen)
{
	size_t n = strlen(id);

	if (!n || n > FC_ID_MAX)
		return fail(err, errlen, "%s: the id '%s' is not 1 to %d characters", what, id,
			    FC_ID_MAX);
	for (size_t i = 0; i < n; i++)
		if (!(id[i] == '_' || (id[i] >= '0' && id[i] <= '9') ||
		      ((id[i] | 0x20) >= 'a' && (id[i] | 0x20) <= 'z')))
			return fail(err, errlen, "%s: the id '%s' has characters other than "
				    "letters, digits and '_'", what, id);
	return 0;
}

/* Firecracker's TokenBucket {size, one_time_burst, refill_time (ms)} at (v) into (tb); (what)
 * names it in messages ("drives: rate_limiter.bandwidth"). A zero size is no limit, as in
 * Firecracker; a zero refill time with a size is refused (Firecracker silently drops such a
 * limit). */
static int parse_bucket(const char *what, json_t *v, struct tb_config *tb, char *err,
			size_t errlen)
{
	static const struct field fields[] = {
		{"size", F_UINT, true},
		{"one_time_burst", F_UINT, false},
		{"refill_time", F_UINT, true},
	};
	int ret = check_object(v, what, fields, ARRAY_SIZE(fields), err, errlen);
	const char *why;

	if (ret)
		return ret;
	tb->size = (uint64_t)json_integer_value(get(v, "size"));
	tb->refill_ms = (uint64_t)json_integer_value(get(v, "refill_time"));
	tb->one_time_burst = get(v, "one_time_burst")
				     ? (uint64_t)json_integer_value(get(v, "one_time_burst")) : 0;
	why = tb_config_check(tb);
	if (why)
		return fail(err, errlen, "%s: %s", what, why);
	return 0;
}

/* Firecracker's RateLimiter {bandwidth, ops} in (body)'s (field), into (rl). A bucket the
 * object leaves out (or null) keeps what (rl) holds: PUT passes zeroes (no limit), PATCH the
 * current value (Firecracker's BucketUpdate::None). (*given) says whether the field was there.
 * (rl) is written only when everything parsed. */
static int parse_rate_limiter(const char *what, json_t *body, const char *field,
			      struct rl_config *rl, bool *given, char *err, size_t errlen)
{
	static const struct field fields[] = {
		{"bandwidth", F_OBJECT, false},
		{"ops", F_OBJECT, false},
	};
	json_t *v = get(body, field);
	struct rl_config c = *rl;
	char path[128];
	int ret;

	if (given)
		*given = v != NULL;
	if (!v)
		return 0;
	snprintf(path, sizeof(path), "%s: %s", what, field);
	ret = check_object(v, path, fields, ARRAY_SIZE(fields), err, errlen);
	if (!ret && get(v, "bandwidth")) {
		snprintf(path, sizeof(path), "%s: %s.bandwidth", what, field);
		ret = parse_bucket(path, get(v, "bandwidth"), &c.bw, err, errlen);
	}
	if (!ret && get(v, "ops")) {
		snprintf(path, sizeof(path), "%s: %s.ops", what, field);
		ret = parse_bucket(path, get(v, "ops"), &c.ops, err, errlen);
	}
	if (!ret)
		*rl = c;
	return ret;
}

static json_t *bucket_json(const struct tb_config *tb)
{
	return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)tb->size, "one_time_burst",
			 (json_int_t)tb->one_time_burst, "refill_time", (json_int_t)tb->refill_ms);
}

json_t *fc_rate_limiter_json(const struct rl_config *c)
{
	json_t *o = json_object();

	if (o && tb_config_on(&c->bw))
		json_object_set_new(o, "bandwidth", bucket_json(&c->bw));
	if (o && tb_config_on(&c->ops))
		json_object_set_new(o, "ops", bucket_json(&c->ops));
	return o;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Replaces (*slot) with a copy of (s) (or NULL). Returns -ENOMEM and leaves it on failure. */
static int set_str(char **slot, const char *s)
{
	char *c = dup_or_null(s);

	if (s && !c)
		return -ENOMEM;
	free(*slot);
	*slot = c;
	return 0;
}

void fc_vm_init(struct fc_vm *vm)
{
	*vm = (struct fc_vm){
		.vcpus = 1,
		.mem_mib = FC_DEFAULT_MEM_MIB,
		.log_level = FC_LOG_INFO,
	};
}

static void drive_fini(struct fc_drive *d)
{
	free(d->path);
	free(d->partuuid);
}

void fc_vm_fini(struct fc_vm *vm)
{
	free(vm->kernel);
	free(vm->initrd);
	free(vm->boot_args);
	for (unsigned int i = 0; i < vm->ndrives; i++)
		drive_fini(&vm->drives[i]);
	free(vm->log_path);
	free(vm->metrics_path);
	json_decref(vm->mmds);
	json_decref(vm->mmds_config);
	free(vm->cmdline);
	fc_vm_init(vm);
}

int fc_put_machine_config(struct fc_vm *vm, json_t *body, bool patch, char *err, size_t errlen)
{
	static const char what[] = "machine-config";
	const struct field fields[] = {
		{"vcpu_count", F_UINT, !patch},	  {"mem_size_mib", F_UINT, !patch},
		{"smt", F_BOOL, false},		  {"track_dirty_pages", F_BOOL, false},
		{"cpu_template", F_STRING, false}, {"huge_pages", F_STRING, false},
	};
	unsigned int vcpus = vm->vcpus, mem = vm->mem_mib;
	bool thp = patch ? vm->thp : false;
	const char *s;
	json_t *v;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (ret)
		return ret;
	if ((v = get(body, "vcpu_count"))) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > FC_MAX_VCPUS)
			return fail(err, errlen, "%s: vcpu_count %lld is outside 1 to %d", what,
				    (long long)json_integer_value(v), FC_MAX_VCPUS);
		vcpus = (unsigned int)json_integer_value(v);
	}
	if ((v = get(body, "mem_size_mib"))) {
		json_int_t mib = json_integer_value(v);

		if (mib < (json_int_t)(LAYOUT_RAM_MIN >> 20) || mib > (json_int_t)(LAYOUT_RAM_MAX >> 20))
			return fail(err, errlen, "%s: mem_size_mib %lld is outside %llu to %llu",
				    what, (long long)mib, LAYOUT_RAM_MIN >> 20,
				    LAYOUT_RAM_MAX >> 20);
		mem = (unsigned int)mib;
	}
	if (get_bool(body, "smt", false))
		return fail(err, errlen, "%s: smt: mvm does not model SMT siblings; use false",
			    what);
	if (get_bool(body, "track_dirty_pages", false))
		return fail(err, errlen, "%s: track_dirty_pages: mvm has no diff snapshots; use "
			    "false", what);
	if ((s = get_str(body, "cpu_template")) && strcmp(s, "None"))
		return fail(err, errlen, "%s: cpu_template '%s': mvm has no CPU templates; use "
			    "\"None\"", what, s);
	if ((s = get_str(body, "huge_pages"))) {
		if (!strcmp(s, "None"))
			thp = false;
		else if (!strcmp(s, "Transparent"))
			thp = true;
		else if (!strcmp(s, "2M"))
			return fail(err, errlen, "%s: huge_pages \"2M\" (hugetlbfs) is not "
				    "supported; \"Transparent\" gives transparent huge pages", what);
		else
			return fail(err, errlen, "%s: huge_pages '%s' is not None, Transparent or "
				    "2M", what, s);
	}
	vm->vcpus = vcpus;
	vm->mem_mib = mem;
	vm->thp = thp;
	return 0;
}

json_t *fc_machine_config_json(const struct fc_vm *vm)
{
	return json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)vm->vcpus,
			 "mem_size_mib", (json_int_t)vm->mem_mib, "smt", 0, "track_dirty_pages", 0,
			 "huge_pages", vm->thp ? "Transparent" : "None");
}

int fc_put_boot_source(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "boot-source";
	static const struct field fields[] = {
		{"kernel_image_path", F_STRING, true},
		{"initrd_path", F_STRING, false},
		{"boot_args", F_STRING, false},
	};
	char *kernel, *initrd, *args;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = check_text(what, "kernel_image_path", body, MVM_DISK_PATH_MAX - 1, err,
				 errlen);
	if (!ret)
		ret = check_text(what, "initrd_path", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	/* Linux's COMMAND_LINE_SIZE on x86 is 2048; leave room for what mvm appends. */
	if (!ret && get(body, "boot_args") &&
	    json_string_length(get(body, "boot_args")) > 1536)
		return fail(err, errlen, "%s: boot_args is longer than 1536 bytes", what);
	if (!ret && get(body, "boot_args") &&
	    json_string_length(get(body, "boot_args")) != strlen(get_str(body, "boot_args")))
		return fail(err, errlen, "%s: boot_args contains a NUL character", what);
	if (ret)
		return ret;
	kernel = strdup(get_str(body, "kernel_image_path"));
	initrd = dup_or_null(get_str(body, "initrd_path"));
	args = dup_or_null(get_str(body, "boot_args"));
	if (!kernel || (get(body, "initrd_path") && !initrd) || (get(body, "boot_args") && !args)) {
		free(kernel);
		free(initrd);
		free(args);
		return fail(err, errlen, "%s: out of memory", what);
	}
	free(vm->kernel);
	free(vm->initrd);
	free(vm->boot_args);
	vm->kernel = kernel;
	vm->initrd = initrd;
	vm->boot_args = args;
	return 0;
}

static struct fc_drive *find_drive(struct fc_vm *vm, const char *id)
{
	for (unsigned int i = 0; i < vm->ndrives; i++)
		if (!strcmp(vm->drives[i].id, id))
			return &vm->drives[i];
	return NULL;
}

int fc_put_drive(struct fc_vm *vm, const char *id, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "drives";
	static const struct field fields[] = {
		{"drive_id", F_STRING, true},	     {"is_root_device", F_BOOL, true},
		{"path_on_host", F_STRING, false},   {"is_read_only", F_BOOL, false},
		{"partuuid", F_STRING, false},	     {"cache_type", F_STRING, false},
		{"io_engine", F_STRING, false},	     {"rate_limiter", F_ANY, false},
		{"socket", F_STRING, false},
	};
	struct fc_drive d = {0}, *old;
	const char *s;
	int ret = check_id(what, id, err, errlen);

	if (!ret)
		ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);
	if (!ret)
		ret = parse_rate_limiter(what, body, "rate_limiter", &d.limit, NULL, err, errlen);
	if (!ret)
		ret = check_text(what, "path_on_host", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (!ret)
		ret = check_text(what, "partuuid", body, 64, err, errlen);
	if (ret)
		return ret;
	if (strcmp(get_str(body, "drive_id"), id))
		return fail(err, errlen, "%s: the drive_id '%s' differs from the id '%s' in the "
			    "path", what, get_str(body, "drive_id"), id);
	if (get(body, "socket"))
		return fail(err, errlen, "%s: 'socket': mvm has no vhost-user-blk; give "
			    "path_on_host", what);
	if (!get(body, "path_on_host"))
		return fail(err, errlen, "%s: missing field 'path_on_host'", what);
	if ((s = get_str(body, "cache_type")) && strcmp(s, "Unsafe") && strcmp(s, "Writeback"))
		return fail(err, errlen, "%s: cache_type '%s' is not Unsafe or Writeback", what, s);
	if ((s = get_str(body, "io_engine")) && strcmp(s, "Sync") && strcmp(s, "Async"))
		return fail(err, errlen, "%s: io_engine '%s' is not Sync or Async", what, s);
	d.root = get_bool(body, "is_root_device", false);
	d.ro = get_bool(body, "is_read_only", false);
	for (unsigned int i = 0; d.root && i < vm->ndrives; i++)
		if (vm->drives[i].root && strcmp(vm->drives[i].id, id))
			return fail(err, errlen, "%s: drive '%s' is already the root device", what,
				    vm->drives[i].id);
	old = find_drive(vm, id);
	if (!old && vm->ndrives == MVM_MAX_DISKS)
		return fail(err, errlen, "%s: at most %d drives", what, MVM_MAX_DISKS);
	snprintf(d.id, sizeof(d.id), "%s", id);
	d.path = strdup(get_str(body, "path_on_host"));
	d.partuuid = dup_or_null(get_str(body, "partuuid"));
	if (!d.path || (get(body, "partuuid") && !d.partuuid)) {
		drive_fini(&d);
		return fail(err, errlen, "%s: out of memory", what);
	}
	if (old) {
		drive_fini(old);
		*old = d;
	} else {
		vm->drives[vm->ndrives++] = d;
	}
	return 0;
}

static int find_index(const struct fc_vm *vm, const char *id)
{
	for (unsigned int i = 0; i < vm->ndrives; i++)
		if (!strcmp(vm->drives[i].id, id))
			return (int)i;
	return -1;
}

int fc_patch_drive(struct fc_vm *vm, const char *id, json_t *body, const char **path,
		   bool *limit, char *err, size_t errlen)
{
	static const char what[] = "drives";
	static const struct field fields[] = {
		{"drive_id", F_STRING, true},
		{"path_on_host", F_STRING, false},
		{"rate_limiter", F_ANY, false},
	};
	struct rl_config rl;
	int i, ret = check_id(what, id, err, errlen);

	if (!ret)
		ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);
	if (!ret)
		ret = check_text(what, "path_on_host", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (ret)
		return ret;
	if (strcmp(get_str(body, "drive_id"), id))
		return fail(err, errlen, "%s: the drive_id '%s' differs from the id '%s' in the "
			    "path", what, get_str(body, "drive_id"), id);
	i = find_index(vm, id);
	if (i < 0)
		return fail(err, errlen, "%s: no drive '%s'", what, id);
	rl = vm->drives[i].limit;
	ret = parse_rate_limiter(what, body, "rate_limiter", &rl, limit, err, errlen);
	if (ret)
		return ret;
	*path = get_str(body, "path_on_host");
	if (!*path)
		vm->drives[i].limit = rl;
	return 0;
}

int fc_patch_net(struct fc_vm *vm, const char *id, json_t *body, bool *rx, bool *tx, char *err,
		 size_t errlen)
{
	static const char what[] = "network-interfaces";
	static const struct field fields[] = {
		{"iface_id", F_STRING, true},
		{"rx_rate_limiter", F_ANY, false},
		{"tx_rate_limiter", F_ANY, false},
	};
	struct rl_config r, t;
	int i, ret = check_id(what, id, err, errlen);

	if (!ret)
		ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);
	if (ret)
		return ret;
	if (strcmp(get_str(body, "iface_id"), id))
		return fail(err, errlen, "%s: the iface_id '%s' differs from the id '%s' in the "
			    "path", what, get_str(body, "iface_id"), id);
	i = fc_net_index(vm, id);
	if (i < 0)
		return fail(err, errlen, "%s: no network interface '%s'", what, id);
	r = vm->nets[i].rx_limit;
	t = vm->nets[i].tx_limit;
	ret = parse_rate_limiter(what, body, "rx_rate_limiter", &r, rx, err, errlen);
	if (!ret)
		ret = parse_rate_limiter(what, body, "tx_rate_limiter", &t, tx, err, errlen);
	if (ret)
		return ret;
	vm->nets[i].rx_limit = r;
	vm->nets[i].tx_limit = t;
	return 0;
}

int fc_drive_index(const struct fc_vm *vm, const char *id)
{
	int i = find_index(vm, id), n = 0;
	bool root = false;

	if (i < 0)
		return -1;
	/* fc_vm_to_config(): the root drive first, the others in the order they were put. */
	if (vm->drives[i].root)
		return 0;
	for (unsigned int j = 0; j < vm->ndrives; j++) {
		root |= vm->drives[j].root;
		if (j < (unsigned int)i && !vm->drives[j].root)
			n++;
	}
	return n + root;
}

int fc_net_index(const struct fc_vm *vm, const char *id)
{
	for (unsigned int i = 0; i < vm->nnets; i++)
		if (!strcmp(vm->nets[i].id, id))
			return (int)i;
	return -1;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6 || strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

int fc_put_net(struct fc_vm *vm, const char *id, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "network-interfaces";
	static const struct field fields[] = {
		{"iface_id", F_STRING, true},	       {"host_dev_name", F_STRING, true},
		{"guest_mac", F_STRING, false},	       {"rx_rate_limiter", F_ANY, false},
		{"tx_rate_limiter", F_ANY, false},     {"mtu", F_UINT, false},
	};
	struct fc_net n = {0};
	const char *tap, *mac;
	unsigned int i;
	int ret = check_id(what, id, err, errlen);

	if (!ret)
		ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);
	if (!ret)
		ret = parse_rate_limiter(what, body, "rx_rate_limiter", &n.rx_limit, NULL, err,
					 errlen);
	if (!ret)
		ret = parse_rate_limiter(what, body, "tx_rate_limiter", &n.tx_limit, NULL, err,
					 errlen);
	if (ret)
		return ret;
	if (strcmp(get_str(body, "iface_id"), id))
		return fail(err, errlen, "%s: the iface_id '%s' differs from the id '%s' in the "
			    "path", what, get_str(body, "iface_id"), id);
	if (get(body, "mtu"))
		return fail(err, errlen, "%s: 'mtu': mvm does not offer VIRTIO_NET_F_MTU; leave "
			    "it out", what);
	tap = get_str(body, "host_dev_name");
	if ((ret = check_tap(what, body, err, errlen)))
		return ret;
	if ((mac = get_str(body, "guest_mac"))) {
		if (parse_mac(mac, n.mac))
			return fail(err, errlen, "%s: guest_mac '%s' is not XX:XX:XX:XX:XX:XX", what,
				    mac);
		if (n.mac[0] & 1)
			return fail(err, errlen, "%s: guest_mac '%s' is a multicast address", what,
				    mac);
		n.has_mac = true;
	}
	for (i = 0; i < vm->nnets && strcmp(vm->nets[i].id, id); i++)
		;
	for (unsigned int j = 0; j < vm->nnets; j++) {
		if (j == i)
			continue;
		if (!strcmp(vm->nets[j].tap, tap))
			return fail(err, errlen, "%s: TAP '%s' is already used by '%s'", what, tap,
				    vm->nets[j].id);
		if (n.has_mac && vm->nets[j].has_mac && !memcmp(vm->nets[j].mac, n.mac, 6))
			return fail(err, errlen, "%s: guest_mac '%s' is already used by '%s'",
				    what, mac, vm->nets[j].id);
	}
	if (i == vm->nnets && vm->nnets == MVM_MAX_NETS)
		return fail(err, errlen, "%s: at most %d network interfaces", what, MVM_MAX_NETS);
	snprintf(n.id, sizeof(n.id), "%s", id);
	snprintf(n.tap, sizeof(n.tap), "%s", tap);
	vm->nets[i] = n;
	if (i == vm->nnets)
		vm->nnets++;
	return 0;
}

int fc_put_logger(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "logger";
	static const struct field fields[] = {
		{"log_path", F_STRING, false},	 {"level", F_STRING, false},
		{"show_level", F_BOOL, false},	 {"show_log_origin", F_BOOL, false},
		{"module", F_STRING, false},
	};
	static const char *const levels[] = {"Off", "Error", "Warning", "Info", "Debug"};
	enum log_level_fc level = FC_LOG_INFO;
	const char *s;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = check_text(what, "log_path", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (ret)
		return ret;
	if ((s = get_str(body, "level"))) {
		unsigned int i;

		/* Firecracker takes them in any case; Trace is mvm's Debug. */
		for (i = 0; i < ARRAY_SIZE(levels) && strcasecmp(s, levels[i]); i++)
			;
		if (i == ARRAY_SIZE(levels) && strcasecmp(s, "Trace"))
			return fail(err, errlen, "%s: level '%s' is not Error, Warning, Info, "
				    "Debug, Trace or Off", what, s);
		level = i == ARRAY_SIZE(levels) ? FC_LOG_DEBUG : (enum log_level_fc)i;
	}
	if (set_str(&vm->log_path, get_str(body, "log_path")))
		return fail(err, errlen, "%s: out of memory", what);
	vm->log_level = level;
	vm->has_logger = true;
	return 0;
}

int fc_put_metrics(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "metrics";
	static const struct field fields[] = {{"metrics_path", F_STRING, true}};
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = check_text(what, "metrics_path", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (ret)
		return ret;
	if (vm->metrics_path)
		return fail(err, errlen, "%s: the metrics are already configured", what);
	if (set_str(&vm->metrics_path, get_str(body, "metrics_path")))
		return fail(err, errlen, "%s: out of memory", what);
	return 0;
}

int fc_put_entropy(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "entropy";
	static const struct field fields[] = {{"rate_limiter", F_ANY, false}};
	struct rl_config rl = {0};
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = parse_rate_limiter(what, body, "rate_limiter", &rl, NULL, err, errlen);
	if (ret)
		return ret;
	vm->entropy = true;
	vm->entropy_limit = rl;
	return 0;
}

/* Firecracker's Vsock: the guest's CID and the host's Unix socket (created by mvm; the guest's
 * connections to port P reach uds_path_P). */
int fc_put_vsock(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "vsock";
	static const struct field fields[] = {
		{"guest_cid", F_UINT, true},
		{"uds_path", F_STRING, true},
		{"vsock_id", F_STRING, false},	/* deprecated in Firecracker, ignored */
	};
	json_int_t cid;
	const char *path;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = check_text(what, "uds_path", body, MVM_VSOCK_PATH_MAX, err, errlen);
	if (ret)
		return ret;
	cid = json_integer_value(get(body, "guest_cid"));
	/* 0-2 are the hypervisor's, the local and the host's CIDs; -1 is VMADDR_CID_ANY. */
	if (cid < 3 || cid > 0xfffffffe)
		return fail(err, errlen, "%s: guest_cid %lld is outside 3 to 4294967294", what,
			    (long long)cid);
	path = get_str(body, "uds_path");
	vm->vsock = (struct vsock_config){.on = true, .cid = (uint64_t)cid};
	snprintf(vm->vsock.path, sizeof(vm->vsock.path), "%s", path);
	return 0;
}

/* Firecracker's Balloon: the target in MiB, deflate on OOM, the statistics interval (0: none),
 * free page reporting; free page hinting is not offered. */
int fc_put_balloon(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "balloon";
	static const struct field fields[] = {
		{"amount_mib", F_UINT, true},
		{"deflate_on_oom", F_BOOL, true},
		{"stats_polling_interval_s", F_UINT, false},
		{"free_page_hinting", F_BOOL, false},
		{"free_page_reporting", F_BOOL, false},
	};
	json_int_t amount, interval = 0;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (ret)
		return ret;
	amount = json_integer_value(get(body, "amount_mib"));
	if (amount > (json_int_t)(LAYOUT_RAM_MAX >> 20))
		return fail(err, errlen, "%s: amount_mib %lld is more than any guest's RAM (%llu MiB)",
			    what, (long long)amount, LAYOUT_RAM_MAX >> 20);
	if (get(body, "stats_polling_interval_s"))
		interval = json_integer_value(get(body, "stats_polling_interval_s"));
	if (interval > MVM_BALLOON_STATS_MAX)
		return fail(err, errlen, "%s: stats_polling_interval_s %lld is outside 0 to %d", what,
			    (long long)interval, MVM_BALLOON_STATS_MAX);
	if (get_bool(body, "free_page_hinting", false))
		return fail(err, errlen, "%s: free_page_hinting: mvm has no free page hinting "
			    "(free_page_reporting gives free memory back)", what);
	vm->balloon = (struct balloon_config){
		.on = true,
		.amount_mib = (uint32_t)amount,
		.deflate_on_oom = get_bool(body, "deflate_on_oom", false),
		.stats_interval_s = (uint32_t)interval,
		.free_page_reporting = get_bool(body, "free_page_reporting", false),
	};
	return 0;
}

int fc_patch_balloon(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "balloon";
	static const struct field fields[] = {{"amount_mib", F_UINT, true}};
	json_int_t amount;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (ret)
		return ret;
	if (!vm->balloon.on)
		return fail(err, errlen, "%s: no balloon device is configured (PUT /balloon)", what);
	amount = json_integer_value(get(body, "amount_mib"));
	if (amount > (json_int_t)vm->mem_mib)
		return fail(err, errlen, "%s: amount_mib %lld is more than the guest's %u MiB of RAM",
			    what, (long long)amount, vm->mem_mib);
	vm->balloon.amount_mib = (uint32_t)amount;
	return 0;
}

int fc_patch_balloon_stats(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "balloon/statistics";
	static const struct field fields[] = {{"stats_polling_interval_s", F_UINT, true}};
	json_int_t interval;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (ret)
		return ret;
	if (!vm->balloon.on)
		return fail(err, errlen, "%s: no balloon device is configured (PUT /balloon)", what);
	interval = json_integer_value(get(body, "stats_polling_interval_s"));
	if (interval > MVM_BALLOON_STATS_MAX)
		return fail(err, errlen, "%s: stats_polling_interval_s %lld is outside 1 to %d", what,
			    (long long)interval, MVM_BALLOON_STATS_MAX);
	/* The statistics queue exists or not for the device's lifetime (virtio/balloon.h). */
	if (!interval != !vm->balloon.stats_interval_s)
		return fail(err, errlen, "%s: stats_polling_interval_s cannot turn statistics %s "
			    "after the start", what, interval ? "on" : "off");
	vm->balloon.stats_interval_s = (uint32_t)interval;
	return 0;
}

json_t *fc_balloon_json(const struct fc_vm *vm, char *err, size_t errlen)
{
	const struct balloon_config *b = &vm->balloon;

	if (!b->on) {
		fail(err, errlen, "balloon: no balloon device is configured (PUT /balloon)");
		return NULL;
	}
	return json_pack("{s:I, s:b, s:I, s:b, s:b}", "amount_mib", (json_int_t)b->amount_mib,
			 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)b->stats_interval_s, "free_page_hinting", false,
			 "free_page_reporting", b->free_page_reporting);
}

/* 169.254.[1-254].[0-255], as firecracker.yaml's MmdsConfig.ipv4_address pattern says. */
static bool link_local(const char *s)
{
	unsigned int a, b, c, d;
	char end;

	return sscanf(s, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &end) == 4 && a == 169 &&
	       b == 254 && c >= 1 && c <= 254 && d <= 255;
}

int fc_put_mmds_config(struct fc_vm *vm, json_t *body, char *err, size_t errlen)
{
	static const char what[] = "mmds-config";
	static const struct field fields[] = {
		{"network_interfaces", F_ARRAY, true}, {"version", F_STRING, false},
		{"ipv4_address", F_STRING, false},     {"imds_compat", F_BOOL, false},
	};
	json_t *ifaces, *v;
	const char *s;
	size_t i;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (ret)
		return ret;
	if ((s = get_str(body, "version")) && strcmp(s, "V1") && strcmp(s, "V2"))
		return fail(err, errlen, "%s: version '%s' is not V1 or V2", what, s);
	if ((s = get_str(body, "ipv4_address")) && !link_local(s))
		return fail(err, errlen, "%s: ipv4_address '%s' is not a link-local address "
			    "169.254.1-254.0-255", what, s);
	ifaces = get(body, "network_interfaces");
	if (!json_array_size(ifaces))
		return fail(err, errlen, "%s: network_interfaces is empty", what);
	json_array_foreach(ifaces, i, v) {
		unsigned int j;

		if (!json_is_string(v))
			return fail(err, errlen, "%s: network_interfaces[%zu] is not a string", what,
				    i);
		for (j = 0; j < vm->nnets && strcmp(vm->nets[j].id, json_string_value(v)); j++)
			;
		if (j == vm->nnets)
			return fail(err, errlen, "%s: no network interface '%s'", what,
				    json_string_value(v));
	}
	json_decref(vm->mmds_config);
	vm->mmds_config = json_incref(body);
	return 0;
}

/* RFC 7396 section 2: the result of applying (patch) to (target); (target) is consumed. */
static json_t *merge_patch(json_t *target, json_t *patch)
{
	const char *key;
	json_t *v;

	if (!json_is_object(patch)) {
		json_decref(target);
		return json_deep_copy(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
		if (!target)
			return NULL;
	}
	json_object_foreach(patch, key, v) {
		if (json_is_null(v)) {
			json_object_del(target, key);
		} else {
			json_t *old = json_object_get(target, key), *m;

			m = merge_patch(old ? json_incref(old) : NULL, v);
			if (!m || json_object_set_new(target, key, m)) {
				json_decref(target);
				return NULL;
			}
		}
	}
	return target;
}

int fc_put_mmds(struct fc_vm *vm, json_t *body, bool patch, size_t limit, char *err,
		size_t errlen)
{
	json_t *store;
	char *text;
	size_t len;

	if (!json_is_object(body))
		return fail(err, errlen, "mmds: the body must be a JSON object");
	if (patch)
		store = merge_patch(vm->mmds ? json_deep_copy(vm->mmds) : json_object(), body);
	else
		store = json_deep_copy(body);
	if (!store)
		return fail(err, errlen, "mmds: out of memory");
	text = json_dumps(store, JSON_COMPACT);
	len = text ? strlen(text) : 0;
	free(text);
	if (!len || len > limit) {
		json_decref(store);
		return fail(err, errlen, "mmds: the data store would be %zu bytes, over the limit "
			    "of %zu", len, limit);
	}
	json_decref(vm->mmds);
	vm->mmds = store;
	return 0;
}

int fc_snapshot_create(json_t *body, const char **state, const char **mem, char *err,
		       size_t errlen)
{
	static const char what[] = "snapshot/create";
	static const struct field fields[] = {
		{"snapshot_path", F_STRING, true},
		{"mem_file_path", F_STRING, true},
		{"snapshot_type", F_STRING, false},
		{"version", F_STRING, false},
	};
	const char *type;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = check_text(what, "snapshot_path", body, MVM_DISK_PATH_MAX - 8, err, errlen);
	if (!ret)
		ret = check_text(what, "mem_file_path", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (ret)
		return ret;
	if ((type = get_str(body, "snapshot_type")) && strcmp(type, "Full"))
		return fail(err, errlen, "%s: snapshot_type '%s': mvm takes Full snapshots only",
			    what, type);
	*state = get_str(body, "snapshot_path");
	*mem = get_str(body, "mem_file_path");
	return 0;
}

/* network_overrides: [{iface_id, host_dev_name}], each NIC once. */
static int net_overrides(json_t *list, struct net_override *nets, unsigned int *nnets, char *err,
			 size_t errlen)
{
	static const char what[] = "snapshot/load: network_overrides";
	static const struct field fields[] = {
		{"iface_id", F_STRING, true},
		{"host_dev_name", F_STRING, true},
	};
	json_t *e;
	size_t i;

	*nnets = 0;
	if (!list)
		return 0;
	if (json_array_size(list) > MVM_MAX_NETS)
		return fail(err, errlen, "%s: at most %d entries", what, MVM_MAX_NETS);
	json_array_foreach(list, i, e) {
		const char *id, *tap;
		int ret = check_object(e, what, fields, ARRAY_SIZE(fields), err, errlen);

		if (ret)
			return ret;
		id = get_str(e, "iface_id");
		tap = get_str(e, "host_dev_name");
		if ((ret = check_id(what, id, err, errlen)) ||
		    (ret = check_tap(what, e, err, errlen)))
			return ret;
		for (unsigned int j = 0; j < *nnets; j++)
			if (!strcmp(nets[j].id, id) || !strcmp(nets[j].tap, tap))
				return fail(err, errlen, "%s: iface_id '%s' or TAP '%s' given twice",
					    what, id, tap);
		snprintf(nets[*nnets].id, sizeof(nets[*nnets].id), "%s", id);
		snprintf(nets[*nnets].tap, sizeof(nets[*nnets].tap), "%s", tap);
		(*nnets)++;
	}
	return 0;
}

int fc_snapshot_load(json_t *body, struct fc_snapshot_load *req, char *err, size_t errlen)
{
	static const char what[] = "snapshot/load";
	static const struct field fields[] = {
		{"snapshot_path", F_STRING, true},	{"mem_file_path", F_STRING, false},
		{"mem_backend", F_OBJECT, false},	{"resume_vm", F_BOOL, false},
		{"enable_diff_snapshots", F_BOOL, false}, {"track_dirty_pages", F_BOOL, false},
		{"network_overrides", F_ARRAY, false},	{"vsock_override", F_OBJECT, false},
		{"clock_realtime", F_BOOL, false},
	};
	static const struct field backend[] = {
		{"backend_type", F_STRING, true},
		{"backend_path", F_STRING, true},
	};
	json_t *mb;
	int ret = check_object(body, what, fields, ARRAY_SIZE(fields), err, errlen);

	if (!ret)
		ret = check_text(what, "snapshot_path", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (!ret)
		ret = check_text(what, "mem_file_path", body, MVM_DISK_PATH_MAX - 1, err, errlen);
	if (ret)
		return ret;
	mb = get(body, "mem_backend");
	if (!mb == !get(body, "mem_file_path"))
		return fail(err, errlen, "%s: exactly one of mem_backend and mem_file_path", what);
	if (mb) {
		ret = check_object(mb, "snapshot/load: mem_backend", backend, ARRAY_SIZE(backend),
				   err, errlen);
		if (!ret)
			ret = check_text(what, "backend_path", mb, MVM_DISK_PATH_MAX - 1, err,
					 errlen);
		if (ret)
			return ret;
		if (strcmp(get_str(mb, "backend_type"), "File"))
			return fail(err, errlen, "%s: backend_type '%s': mvm loads memory from a "
				    "File only", what, get_str(mb, "backend_type"));
		req->mem = get_str(mb, "backend_path");
	} else {
		req->mem = get_str(body, "mem_file_path");
	}
	if (get_bool(body, "enable_diff_snapshots", false) ||
	    get_bool(body, "track_dirty_pages", false))
		return fail(err, errlen, "%s: mvm has no diff snapshots (dirty page tracking)",
			    what);
	if (get(body, "vsock_override")) {
		static const struct field vsock_fields[] = {{"uds_path", F_STRING, true}};
		json_t *vo = get(body, "vsock_override");

		ret = check_object(vo, "snapshot/load: vsock_override", vsock_fields,
				   ARRAY_SIZE(vsock_fields), err, errlen);
		if (!ret)
			ret = check_text("snapshot/load: vsock_override", "uds_path", vo,
					 MVM_VSOCK_PATH_MAX, err, errlen);
		if (ret)
			return ret;
		req->vsock_path = get_str(vo, "uds_path");
	}
	ret = net_overrides(get(body, "network_overrides"), req->nets, &req->nnets, err, errlen);
	if (ret)
		return ret;
	req->clock_realtime = get_bool(body, "clock_realtime", false);
	req->state = get_str(body, "snapshot_path");
	req->resume = get_bool(body, "resume_vm", false);
	return 0;
}

int fc_unsupported(const char *what, char *err, size_t errlen)
{
	return fail(err, errlen, "%s: mvm has no %s device yet", what, what);
}

/* A config-file section that is an array of what PUT /section/{id} takes: each element put
 * under its own id (field (id_field)), errors named "section[i]: ...". */
static int put_each(struct fc_vm *vm, json_t *doc, const char *section, const char *id_field,
		    int (*put)(struct fc_vm *, const char *, json_t *, char *, size_t), char *err,
		    size_t errlen)
{
	json_t *list = get(doc, section), *e;
	char sub[224];
	size_t i;

	if (!list)
		return 0;
	if (!json_is_array(list))
		return fail(err, errlen, "%s: must be an array", section);
	json_array_foreach(list, i, e) {
		const char *id = json_is_object(e) ? get_str(e, id_field) : NULL;

		if (put(vm, id ? id : "", e, sub, sizeof(sub)))
			return fail(err, errlen, "%s[%zu]: %s", section, i, sub);
	}
	return 0;
}

/* FullVmConfiguration: the sections Firecracker's --config-file takes, applied in its order
 * (logger and metrics first, so the rest is logged). */
int fc_load_config(struct fc_vm *vm, const char *text, size_t len, char *err, size_t errlen)
{
	static const char *const known[] = {
		"logger", "metrics", "machine-config", "cpu-config", "boot-source", "drives",
		"network-interfaces", "entropy", "mmds-config", "vsock", "balloon", "pmem",
		"memory-hotplug", "serial",
	};
	static const char *const missing[] = {"cpu-config", "pmem", "memory-hotplug", "serial"};
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr), *v;
	const char *key;
	size_t i;
	int ret = 0;

	if (!doc)
		return fail(err, errlen, "line %d, column %d: %s", jerr.line, jerr.column,
			    jerr.text);
	if (!json_is_object(doc)) {
		ret = fail(err, errlen, "the configuration must be a JSON object");
		goto out;
	}
	json_object_foreach(doc, key, v) {
		for (i = 0; i < ARRAY_SIZE(known) && strcmp(known[i], key); i++)
			;
		if (i == ARRAY_SIZE(known)) {
			ret = fail(err, errlen, "unknown section '%s'", key);
			goto out;
		}
	}
	if ((v = get(doc, "logger")) && (ret = fc_put_logger(vm, v, err, errlen)))
		goto out;
	if ((v = get(doc, "metrics")) && (ret = fc_put_metrics(vm, v, err, errlen)))
		goto out;
	if ((v = get(doc, "machine-config")) &&
	    (ret = fc_put_machine_config(vm, v, false, err, errlen)))
		goto out;
	for (i = 0; i < ARRAY_SIZE(missing); i++) {
		if (get(doc, missing[i])) {
			ret = fc_unsupported(missing[i], err, errlen);
			goto out;
		}
	}
	if ((v = get(doc, "boot-source")) && (ret = fc_put_boot_source(vm, v, err, errlen)))
		goto out;
	if ((ret = put_each(vm, doc, "drives", "drive_id", fc_put_drive, err, errlen)) ||
	    (ret = put_each(vm, doc, "network-interfaces", "iface_id", fc_put_net, err, errlen)))
		goto out;
	if ((v = get(doc, "entropy")) && (ret = fc_put_entropy(vm, v, err, errlen)))
		goto out;
	if ((v = get(doc, "vsock")) && (ret = fc_put_vsock(vm, v, err, errlen)))
		goto out;
	if ((v = get(doc, "balloon")) && (ret = fc_put_balloon(vm, v, err, errlen)))
		goto out;
	if ((v = get(doc, "mmds-config")) && (ret = fc_put_mmds_config(vm, v, err, errlen)))
		goto out;
out:
	json_decref(doc);
	return ret;
}

int fc_vm_to_config(struct fc_vm *vm, const struct vm_config *base, struct vm_config *cfg,
		    char *err, size_t errlen)
{
	const struct fc_drive *root = NULL;
	const char *args;
	size_t n;

	if (!vm->kernel)
		return fail(err, errlen, "InstanceStart: no boot source: PUT /boot-source first");
	*cfg = *base;
	cfg->command = CMD_RUN;
	cfg->fc_thread_names = true;
	cfg->kernel = vm->kernel;
	cfg->initrd = vm->initrd;
	cfg->mem = (uint64_t)vm->mem_mib << 20;
	cfg->mem_thp = vm->thp;
	cfg->cpus = vm->vcpus;
	cfg->rng = vm->entropy;
	cfg->rng_limit = vm->entropy_limit;
	cfg->vsock = vm->vsock;
	cfg->balloon = vm->balloon;
	if (vm->balloon.on && vm->balloon.amount_mib > vm->mem_mib)
		return fail(err, errlen, "InstanceStart: balloon: amount_mib %u is more than the "
			    "guest's %u MiB of RAM (mem_size_mib)", vm->balloon.amount_mib,
			    vm->mem_mib);
	cfg->ndisks = 0;
	cfg->nnets = 0;
	/* The root drive is the guest's vda, the others follow in the order they were put, as
	 * Firecracker attaches them. */
	for (unsigned int i = 0; i < vm->ndrives; i++)
		if (vm->drives[i].root)
			root = &vm->drives[i];
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned int i = 0; i < vm->ndrives; i++) {
			const struct fc_drive *d = &vm->drives[i];
			struct disk_config *dc;

			if ((d == root) != (pass == 0))
				continue;
			dc = &cfg->disks[cfg->ndisks++];
			*dc = (struct disk_config){.ro = d->ro, .limit = d->limit};
			snprintf(dc->path, sizeof(dc->path), "%s", d->path);
			/* The drive id is the serial the guest reads (virtio-blk GET_ID, 20 bytes). */
			snprintf(dc->id, sizeof(dc->id), "%.*s", MVM_DISK_ID_MAX, d->id);
		}
	}
	for (unsigned int i = 0; i < vm->nnets; i++) {
		struct net_config *nc = &cfg->nets[cfg->nnets++];

		*nc = (struct net_config){.has_mac = vm->nets[i].has_mac,
					  .rx_limit = vm->nets[i].rx_limit,
					  .tx_limit = vm->nets[i].tx_limit};
		snprintf(nc->tap, sizeof(nc->tap), "%s", vm->nets[i].tap);
		snprintf(nc->id, sizeof(nc->id), "%s", vm->nets[i].id);
		memcpy(nc->mac, vm->nets[i].mac, 6);
	}
	if (cfg->ndisks + cfg->nnets + cfg->rng + cfg->vsock.on + cfg->balloon.on +
		    (cfg->console == CONSOLE_VIRTIO) >
	    MVM_MAX_VIRTIO)
		return fail(err, errlen, "InstanceStart: %u drives, %u network interfaces%s: at "
			    "most %d virtio devices in all", cfg->ndisks, cfg->nnets,
			    cfg->rng ? " and the entropy device" : "", MVM_MAX_VIRTIO);
	/* Firecracker appends the root device to the boot arguments. */
	args = vm->boot_args ? vm->boot_args : MVM_DEFAULT_CMDLINE;
	n = strlen(args) + sizeof(" root=PARTUUID= rw") +
	    (root && root->partuuid ? strlen(root->partuuid) : 0);
	free(vm->cmdline);
	vm->cmdline = malloc(n);
	if (!vm->cmdline)
		return fail(err, errlen, "InstanceStart: out of memory");
	if (!root)
		snprintf(vm->cmdline, n, "%s", args);
	else if (root->partuuid)
		snprintf(vm->cmdline, n, "%s root=PARTUUID=%s %s", args, root->partuuid,
			 root->ro ? "ro" : "rw");
	else
		snprintf(vm->cmdline, n, "%s root=/dev/vda %s", args, root->ro ? "ro" : "rw");
	cfg->cmdline = vm->cmdline;
	return 0;
}
