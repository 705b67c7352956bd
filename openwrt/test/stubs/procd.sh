# shellcheck shell=ash
# Stand-ins for OpenWrt's /lib/functions/procd.sh: each procd_* call prints itself instead of
# building the JSON message for procd, and uci_load_validate checks options the way procd's
# /sbin/validate_data (libvalidate) does for the types streampump's init script uses:
# - bool: 0 no off false disabled / 1 yes on true enabled, any case, handed on as 0 or 1;
# - uinteger: what strtoul(value, base 0) reads whole and non-negative (so 0x10 and 010 pass);
# - port: what strtoul(value, base 10) reads whole, at most 65535 once stored in an int (so
#   -1 passes, as on a router: the relay's own --check catches it);
# - ipaddr: an address inet_pton takes (dotted quad without leading zeros, or IPv6);
# - or("a","b"): one of the strings; string: anything.
# An invalid value fails the section and its variable is left unset; defaults are not checked.

procd_open_service() { echo "procd_open_service $*"; }
procd_close_service() { echo "procd_close_service"; }
procd_open_instance() { echo "procd_open_instance $*"; }
procd_close_instance() { echo "procd_close_instance"; }
procd_set_param() { echo "procd_set_param $*"; }
procd_append_param() { echo "procd_append_param $*"; }
procd_add_reload_trigger() { echo "procd_add_reload_trigger $*"; }
procd_add_validation() { echo "procd_add_validation $*"; }

# stub_valid TYPE VALUE: succeeds when validate_data would accept VALUE as TYPE.
stub_valid() {
	local type="$1" value="$2" part groups
	case "$type" in
	string) return 0 ;;
	bool)
		case "$(echo "$value" | tr '[:upper:]' '[:lower:]')" in
		0 | no | off | false | disabled | 1 | yes | on | true | enabled) return 0 ;;
		esac
		return 1
		;;
	uinteger)
		echo "$value" | grep -Eq '^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$'
		return
		;;
	port)
		echo "$value" | grep -Eq '^-?[0-9]+$' || return 1
		[ "${value#-}" != "$value" ] || [ "$value" -le 65535 ]
		return
		;;
	ipaddr)
		case "$value" in
		*:*)
			echo "$value" | grep -Eq '^[0-9a-fA-F:]+(:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)?$' || return 1
			case "$value" in *:::* | *::*::*) return 1 ;; esac
			groups=$(echo "$value" | tr -cd : | wc -c)
			[ "$groups" -le 7 ] || return 1
			case "$value" in *::*) ;; *) [ "$groups" -eq 7 ] || return 1 ;; esac
			return 0
			;;
		esac
		echo "$value" | grep -Eq '^([0-9]|[1-9][0-9]+)(\.([0-9]|[1-9][0-9]+)){3}$' || return 1
		# shellcheck disable=SC2046 # splitting at the dots is the point
		set -- $(echo "$value" | tr . ' ')
		for part in "$@"; do
			[ "$part" -le 255 ] || return 1
		done
		return 0
		;;
	or\(*)
		case ",${type#or(}" in
		*",\"$value\","* | *",\"$value\")"*) return 0 ;;
		esac
		return 1
		;;
	esac
	echo "stub validate_data: type '$type' is not implemented" >&2
	return 1
}

# stub_normalised TYPE VALUE: the value as validate_data hands it on.
stub_normalised() {
	case "$1:$(echo "$2" | tr '[:upper:]' '[:lower:]')" in
	bool:1 | bool:yes | bool:on | bool:true | bool:enabled) echo 1 ;;
	bool:*) echo 0 ;;
	*) echo "$2" ;;
	esac
}

# uci_load_validate PACKAGE TYPE SECTION CALLBACK SPEC... where SPEC is NAME:TYPE[:DEFAULT]
uci_load_validate() {
	local package="$1" type="$2" section="$3" callback="$4" spec name rest vtype default value set
	local result=0
	shift 4
	# As in the real helper, the option variables are local to this call and its callback.
	for spec in "$@"; do
		eval "local ${spec%%:*}"
	done
	for spec in "$@"; do
		name=${spec%%:*}
		rest=${spec#*:}
		# The default follows the last ':' (types such as or("a","b") contain none); it is read
		# through eval below.
		# shellcheck disable=SC2034
		case "$rest" in
		*:*) vtype=${rest%:*} default=${rest##*:} ;;
		*) vtype=$rest default="" ;;
		esac
		eval "set=\${CONFIG_${section}_${name}+x}"
		if [ -z "$set" ]; then
			eval "$name=\$default"
			continue
		fi
		eval "value=\$CONFIG_${section}_${name}"
		if stub_valid "$vtype" "$value"; then
			value=$(stub_normalised "$vtype" "$value")
			eval "$name=\$value"
		else
			echo "validate_data: $package.$section.$name='$value' is not a valid $vtype" >&2
			result=255
			unset -v "$name"
		fi
	done
	[ -n "$callback" ] || return $result
	"$callback" "$section" "$result"
}
