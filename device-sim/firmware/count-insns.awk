# Counts executed instructions between consecutive marker addresses in a QEMU
# `-singlestep -d exec,nochain` log: one "Trace" line per executed translation block,
# each block one instruction (checked: the block's instruction count, the low 9 bits
# of its cflags, must be 1). Input: -v marks="hex addresses in order".
function hex(s,    i, v) {
    v = 0
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v
}
BEGIN {
    n = split(marks, m, " ")
    for (i = 1; i <= n; i++) { a = m[i]; sub(/^0x/, "", a); addr[a] = i - 1 }
    cur = -1
}
/^Trace / {
    split($4, f, "/")
    pc = f[2]
    cf = f[4]; sub(/\].*/, "", cf)
    if (hex(substr(cf, length(cf) - 2)) % 512 != 1) multi++
    if ((pc in addr) && !((addr[pc]) in seen)) {
        k = addr[pc]; seen[k] = 1
        if (cur >= 0) count[cur] = c
        cur = k; c = 0
        next
    }
    if (cur >= 0) c++
}
END {
    for (i = 0; i < n - 1; i++) printf "region %d %d\n", i, count[i]
    printf "multi %d\n", multi + 0
}
