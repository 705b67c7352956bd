# shellcheck shell=ash
# Stand-ins for OpenWrt's /lib/functions/procd.sh: each procd_* call prints itself instead of
# building the JSON message for procd, and uci_load_validate checks options the way
# /sbin/validate_data does for the types streampump's init script uses (bool, ipaddr, port,
# uinteger, string, or(...)). A value of the wrong type fails the whole section, as on a router.

procd_open_service() { echo "procd_open_service $*"; }
procd_close_service() { echo "procd_close_service"; }
procd_open_instance() { echo "procd_open_instance $*"; }
procd_close_instance() { echo "procd_close_instance"; }
procd_set_param() { echo "procd_set_param $*"; }
procd_append_param() { echo "procd_append_param $*"; }
procd_add_reload_trigger() { echo "procd_add_reload_trigger $*"; }
procd_add_validation() { echo "procd_add_validation $*"; }

# stub_valid TYPE VALUE
stub_valid() {
	local type="$1" value="$2" part
	case "$type" in
	string) return 0 ;;
	bool)
		case "$value" in
		0 | 1 | yes | no | on | off | true | false | enabled | disabled) return 0 ;;
		esac
		return 1
		;;
	uinteger)
		case "$value" in
		"" | *[!0-9]*) return 1 ;;
		esac
		return 0
		;;
	port)
		stub_valid uinteger "$value" && [ "$value" -le 65535 ]
		return
		;;
	ipaddr)
		case "$value" in
		*:*)
			case "$value" in *[!0-9a-fA-F:.]*) return 1 ;; esac
			return 0
			;;
		esac
		# shellcheck disable=SC2046 # splitting at the dots is the point
		set -- $(echo "$value" | tr . ' ')
		[ $# = 4 ] && [ "$value" = "$1.$2.$3.$4" ] || return 1
		for part in "$@"; do
			stub_valid uinteger "$part" && [ "$part" -le 255 ] || return 1
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
		# The type may contain ':'-free commas and quotes; the default is after the last ':'.
		case "$rest" in
		*:*) vtype=${rest%:*} default=${rest##*:} ;;
		*) vtype=$rest default="" ;;
		esac
		eval "set=\${CONFIG_${section}_${name}+x}"
		if [ -n "$set" ]; then
			eval "value=\$CONFIG_${section}_${name}"
		else
			value=$default
		fi
		if [ -n "$value" ] && ! stub_valid "$vtype" "$value"; then
			echo "validate_data: $package.$section.$name='$value' is not a valid $vtype" >&2
			result=1
			value=""
		fi
		eval "$name=\$value"
	done
	[ -n "$callback" ] || return $result
	"$callback" "$section" "$result"
}
