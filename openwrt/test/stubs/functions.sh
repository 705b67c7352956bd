# shellcheck shell=ash
# Stand-ins for the parts of OpenWrt's /lib/functions.sh an init script uses: reading UCI
# files (config_load, config_foreach, config_get), user_exists and logger.
#
# The UCI reader understands what /etc/config files written by hand contain: `config TYPE
# 'NAME'` (or an anonymous section), and `option KEY 'VALUE'` with single, double or no quotes.

STUB_SECTIONS=""

config_load() {
	local file="${STUB_UCI_CONFIG:?STUB_UCI_CONFIG must name the UCI file}" line keyword key value
	local section="" anonymous=0
	STUB_SECTIONS=""
	while IFS= read -r line || [ -n "$line" ]; do
		# shellcheck disable=SC2086 # word splitting is how UCI lines are tokenised here
		set -- $line
		keyword=$1
		case "$keyword" in
		config)
			if [ -n "$3" ]; then
				section=$(stub_unquote "$3")
			else
				anonymous=$((anonymous + 1))
				section="cfg$anonymous"
			fi
			STUB_SECTIONS="$STUB_SECTIONS $section"
			eval "STUB_TYPE_$section=\$2"
			;;
		option)
			key=$2
			shift 2
			value=$(stub_unquote "$*")
			eval "CONFIG_${section}_${key}=\$value"
			;;
		esac
	done <"$file"
}

stub_unquote() {
	case "$1" in
	\'*\') value=${1#\'} && echo "${value%\'}" ;;
	\"*\") value=${1#\"} && echo "${value%\"}" ;;
	*) echo "$1" ;;
	esac
}

config_get() {
	# config_get VAR SECTION OPTION [DEFAULT]
	local set
	eval "set=\${CONFIG_$2_$3+x}"
	if [ -n "$set" ]; then
		eval "$1=\$CONFIG_$2_$3"
	else
		eval "$1=\$4"
	fi
}

config_foreach() {
	local callback="$1" type="$2" section section_type
	shift 2
	for section in $STUB_SECTIONS; do
		eval "section_type=\$STUB_TYPE_$section"
		[ "$section_type" = "$type" ] && "$callback" "$section" "$@"
	done
	return 0
}

user_exists() {
	case " ${STUB_USERS:-root nobody} " in
	*" $1 "*) return 0 ;;
	*) return 1 ;;
	esac
}

logger() {
	echo "logger $*"
}

# The init script prepares the state directory as root; here the calls are shown, not made,
# so that the test neither needs root nor touches the machine's /etc.
mkdir() {
	echo "mkdir $*"
}

chown() {
	echo "chown $*"
}

chmod() {
	echo "chmod $*"
}
