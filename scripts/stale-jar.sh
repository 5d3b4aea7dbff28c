# Sourced by ./quant: stale_jar ROOT JAR prints the first source or pom under ROOT newer than JAR (or "JAR is missing")
# and returns 0 when JAR must be rebuilt; returns 1 when it is up to date. Sources: quant-core and quant-cli (main
# code and resources) and the three poms they are built from.
stale_jar() {
    local root="$1" jar="$2" newer
    if [ ! -f "$jar" ]; then
        echo "$jar is missing"
        return 0
    fi
    newer=$(find "$root/pom.xml" "$root/quant-core/pom.xml" "$root/quant-cli/pom.xml" \
        "$root/quant-core/src/main" "$root/quant-cli/src/main" -newer "$jar" -type f -print -quit 2>/dev/null)
    if [ -n "$newer" ]; then
        echo "$newer is newer"
        return 0
    fi
    return 1
}
