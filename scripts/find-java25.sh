# Sourced by ./quant and ./bench: prints a java executable of JDK 25 or newer (JAVA_HOME first, then /usr/lib/jvm,
# then the PATH), or returns 1.
find_java25() {
    local candidates=()
    [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME/bin/java")
    candidates+=(/usr/lib/jvm/*25*/bin/java /usr/lib/jvm/*/bin/java "$(command -v java || true)")
    local j v
    for j in "${candidates[@]}"; do
        [ -x "$j" ] || continue
        v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
        if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then
            echo "$j"
            return 0
        fi
    done
    return 1
}
