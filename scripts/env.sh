# Source this to get slotpay's toolchain and cached tools in an interactive shell:
#   . scripts/env.sh
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
slotpay_env
echo "slotpay: toolchain +$SLOTPAY_TOOLCHAIN ($SLOTPAY_TOOLCHAIN_SOURCE), cache $SLOTPAY_CACHE"
