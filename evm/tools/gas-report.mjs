// Writes bench/evm-gas.md from a run of script/Gas.s.sol on anvil (scripts/evm.sh gas):
// every transaction's gasUsed from its receipt, and for open and close of each
// construction an itemised account of the gas from the node's own opcode trace
// (debug_traceTransaction, anvil --steps-tracing), so that the items add up to the
// measured total.
//
// usage: node gas-report.mjs RPC_URL EVM_DIR OUT.md   (facts about the run in env: see `meta`)
import { readFileSync, writeFileSync } from 'node:fs'

const [rpc, evmDir, outPath] = process.argv.slice(2)
const meta = {
  command: process.env.GAS_COMMAND,
  date: process.env.GAS_DATE,
  forge: process.env.GAS_FORGE,
  anvil: process.env.GAS_ANVIL,
  solc: process.env.GAS_SOLC,
  settings: process.env.GAS_SETTINGS,
}

async function call(method, params) {
  const res = await fetch(rpc, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  })
  const body = await res.json()
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`)
  return body.result
}

meta.hardfork = (await call('anvil_nodeInfo', [])).hardFork

// ------------------------------------------------------------------ the transactions

const txs = []
for (const phase of ['phase1', 'phase2']) {
  const run = JSON.parse(readFileSync(`${evmDir}/broadcast/Gas.s.sol/31337/${phase}-latest.json`, 'utf8'))
  const labels = readFileSync(`${evmDir}/cache/gas-labels-${phase}.txt`, 'utf8').trim().split('\n')
  if (labels.length !== run.transactions.length) {
    throw new Error(`${phase}: ${labels.length} labels for ${run.transactions.length} transactions`)
  }
  run.transactions.forEach((t, i) => {
    const receipt = run.receipts.find((r) => r.transactionHash === t.hash)
    if (!receipt || receipt.status !== '0x1') throw new Error(`${labels[i]}: no successful receipt`)
    const [message, construction] = labels[i].split('|')
    txs.push({ message, construction, hash: t.hash, input: t.transaction.input, gasUsed: Number(receipt.gasUsed), create: t.transactionType === 'CREATE' })
  })
}

// ------------------------------------------------------------------ itemising one transaction

const CATEGORY = {
  SSTORE: 'SSTORE', SLOAD: 'SLOAD', CALL: 'CALL (value)', STATICCALL: 'STATICCALL (ecrecover)',
  LOG0: 'LOG', LOG1: 'LOG', LOG2: 'LOG', LOG3: 'LOG', LOG4: 'LOG', KECCAK256: 'KECCAK256',
  TLOAD: 'TLOAD/TSTORE (lock)', TSTORE: 'TLOAD/TSTORE (lock)',
  CALLDATALOAD: 'calldata reads and copies', CALLDATACOPY: 'calldata reads and copies',
}

async function itemise(tx) {
  const bytes = Buffer.from(tx.input.slice(2), 'hex')
  const zero = bytes.filter((b) => b === 0).length
  const nonzero = bytes.length - zero
  const trace = await call('debug_traceTransaction', [tx.hash, { disableStorage: true, disableMemory: true, disableStack: true }])
  const logs = trace.structLogs
  if (!logs.length) throw new Error('no structLogs: is anvil running with --steps-tracing?')
  const top = Math.min(...logs.map((l) => l.depth))
  const steps = logs.map((l, i) => ({ ...l, i })).filter((l) => l.depth === top)
  const items = new Map()
  let execution = 0
  steps.forEach((s, k) => {
    // Net cost of a step: the gas it leaves to the next step at the same depth (a CALL's
    // includes what its callee used and returned); the last step's own cost.
    const cost = k + 1 < steps.length ? s.gas - steps[k + 1].gas : s.gasCost
    const name = CATEGORY[s.op] ?? 'other opcodes'
    const item = items.get(name) ?? { count: 0, gas: 0 }
    item.count += 1
    item.gas += cost
    items.set(name, item)
    execution += cost
  })
  const calldata = 16 * nonzero + 4 * zero
  const intrinsic = 21000 + calldata
  const refund = intrinsic + execution - tx.gasUsed
  if (refund < 0) throw new Error(`${tx.message}: the items exceed gasUsed (calldata floor?)`)
  return { zero, nonzero, calldata, intrinsic, items, execution, refund }
}

// ------------------------------------------------------------------ the report

const constructions = ['account', 'delegate', 'group of 2', 'group of 2^10']
const original = { open: [43700, 50388, 50388, null], close: [36258, 36258, 36330, null] }
const fmt = (n) => (n == null ? 'n/a' : n.toLocaleString('en-US'))
const byLabel = (message, construction) => txs.find((t) => t.message === message && t.construction === construction)

const messages = [...new Set(txs.filter((t) => constructions.includes(t.construction)).map((t) => t.message))]
let md = `# EVM gas: SlotpayChannels on anvil

Measured ${meta.date} by \`${meta.command}\` (script/Gas.s.sol, every message sent as a real
transaction by \`forge script --broadcast --slow\` to a fresh anvil, \`gasUsed\` read from
each receipt; tools/gas-report.mjs writes this file). Tools: ${meta.forge}; ${meta.anvil}
(hardfork: ${meta.hardfork}); solc ${meta.solc} (solcjs, the npm package \`solc\`, behind evm/tools/solc). Compiler settings: ${meta.settings}.
Deposits 0.2 ETH (0.1 + a 0.1 top-up) on the first channel of each construction, 0.1 on
the others; receipts of 0.01 to 0.05 ETH; payer and payee are funded accounts (no
new-account surcharge); the payee sends settle and close, so it is warm (EIP-2929) and the
payer is not.

## Every message

| message | account | delegate | group of 2 | group of 2^10 | original design |
| --- | ---: | ---: | ---: | ---: | ---: |
`
for (const message of messages) {
  const cells = constructions.map((c) => fmt(byLabel(message, c)?.gasUsed))
  const orig = message === 'open' ? original.open : message === 'close (one receipt)' ? original.close : null
  const o = orig ? orig.slice(0, 3).map(fmt).join(' / ') : '-'
  md += `| ${message} | ${cells.join(' | ')} | ${o} |\n`
}
md += `
Other transactions of the run: ${txs
  .filter((t) => !constructions.includes(t.construction) || t.construction === '-')
  .map((t) => `${t.message}${t.construction !== '-' ? ` (${t.construction})` : ''} ${fmt(t.gasUsed)}`)
  .join('; ')}. A wallet's \`exec\` adds its own call overhead (about 3,000 gas) to what it forwards.

"open (again)" is a later open of the same construction (the same cost: the counter's word
is never zero, see below); "close (one receipt)" closes a channel that was never settled
(the original design's close); "close (after settles and a rotation)" closes one that was
settled twice, rotated and settled in the new epoch (one more word to delete, refunded).

## Against the original design

| | construction | measured | original | difference |
| --- | --- | ---: | ---: | ---: |
`
const headline = []
for (const [message, label] of [['open', 'open'], ['close', 'close (one receipt)']]) {
  constructions.forEach((c, k) => {
    const t = byLabel(label, c)
    const o = original[message][k]
    headline.push({ message, label, construction: c, tx: t, original: o })
    md += `| ${message} | ${c} | ${fmt(t.gasUsed)} | ${fmt(o)} | ${o == null ? '-' : (t.gasUsed - o > 0 ? '+' : '') + fmt(t.gasUsed - o)} |\n`
  })
}

md += `
The goal (open and close at or below the original's figures) is not met for any
construction: open costs about twice the original, close about 1.4 to 1.6 times. The gap
is priced item by item below, from the node's trace of each transaction; the open's is
almost all storage: 43,700 gas is the transaction (21,000) and one new storage word
(22,100 today, 20,000 before EIP-2929) with some 600 gas left for everything else, while a
channel the AS can read with one eth_call takes at least three words; the close's gap is
the two payments and today's storage prices.

## Where the gas goes, item by item

Each column is one measured transaction. Intrinsic gas: 21,000 per transaction plus 16 per
non-zero and 4 per zero calldata byte (EIP-2028; the EIP-7623 floor of 10 per token does not
bind here). Execution: every opcode's net gas from \`debug_traceTransaction\` (a CALL
counts what its callee spent; a precompile call likewise), grouped by opcode. The refund
(EIP-3529: 4,800 per storage word cleared, capped at a fifth of the gas used) is the
difference to the receipt's \`gasUsed\`, so every column adds up to the measured total.

`
const itemised = []
for (const h of headline) itemised.push({ ...h, it: await itemise(h.tx) })
const names = ['SSTORE', 'SLOAD', 'CALL (value)', 'STATICCALL (ecrecover)', 'LOG', 'KECCAK256', 'TLOAD/TSTORE (lock)', 'calldata reads and copies', 'other opcodes']
md += `| item | ${itemised.map((x) => `${x.message} ${x.construction}`).join(' | ')} |\n`
md += `| --- | ${itemised.map(() => '---:').join(' | ')} |\n`
md += `| transaction (21,000) | ${itemised.map(() => '21,000').join(' | ')} |\n`
md += `| calldata (non-zero/zero bytes) | ${itemised.map((x) => `${fmt(x.it.calldata)} (${x.it.nonzero}/${x.it.zero})`).join(' | ')} |\n`
for (const n of names) {
  md += `| ${n} | ${itemised.map((x) => { const i = x.it.items.get(n); return i ? `${fmt(i.gas)} (${i.count})` : '0' }).join(' | ')} |\n`
}
md += `| refund | ${itemised.map((x) => (x.it.refund ? `-${fmt(x.it.refund)}` : '0')).join(' | ')} |\n`
md += `| **gasUsed (receipt)** | ${itemised.map((x) => `**${fmt(x.tx.gasUsed)}**`).join(' | ')} |\n`

const get = (x, n) => x.it.items.get(n)?.gas ?? 0
const oa = itemised.find((x) => x.message === 'open' && x.construction === 'account')
const od = itemised.find((x) => x.message === 'open' && x.construction === 'delegate')
const ca = itemised.find((x) => x.message === 'close' && x.construction === 'account')
const cg = itemised.find((x) => x.message === 'close' && x.construction === 'group of 2^10')
md += `
(count) is the number of such opcodes. Sum check: 21,000 + calldata + every item − refund =
gasUsed in every column (the report generator refuses to write otherwise).

### What each item is, and what removing it would take

- **SSTORE** (open account ${fmt(get(oa, 'SSTORE'))}, delegate ${fmt(get(od, 'SSTORE'))}). An account channel is three new
  storage words at 22,100 each (20,000 + a cold slot's 2,100, EIP-2929): word 0 payer,
  expiry, notice and epoch; word 1 payee, authority kind and the pending rotation's kind
  and block; word 2 deposit and settled. A delegate or group channel adds word 3, the key
  or the root (22,100 more). The counter is a fourth write, non-zero to non-zero (2,900 +
  2,100 cold = 5,000); it would be 22,100 for the first open of a contract had the
  constructor not made its word non-zero (done). The fields of a channel are 90 bytes
  (two addresses, 40; deposit and settled as uint128, 32; expiry, notice, epoch and the
  rotation's block, 16; two kinds, 2), so three words is the least that holds them; a key
  or root is a fourth, base and a pending rotation's value only appear later. Keeping
  only a hash of the channel on chain (one word) would meet the original's open, but the
  AS could then not read a channel with one eth_call, which this design requires (not
  done); narrower amounts are priced below (not done).
- **LOG** (open: \`Opened\`, LOG3: the event's signature, the channel and the payee as
  topics, six data words: 375 + 3 × 375 + 8 × 192 = 3,036; close: \`Closed\`, LOG2 with two
  words, 1,637). The events are what off-chain code follows; the payee topic lets an AS
  find its channels with one log filter (119 gas more than an unindexed field). Removing
  them would save the item (not done: the ink! contract emits the same events).
- **calldata**: ABI encoding pads every argument to 32 bytes (zero bytes at 4 gas); a
  packed encoding would save part of this item, but wallets and ABI libraries speak only
  the ABI (not done). The signature is 65 bytes (plus its ABI length and offset words).
- **CALL (value)** (close account ${fmt(get(ca, 'CALL (value)'))}): two payments. Each CALL with value costs
  9,000 plus the account access (100 warm, 2,600 cold), and gives the callee a 2,300
  stipend on top of PAYMENT_GAS that an account without code returns: net 6,800 for the
  payee (warm: it sent the transaction) and 9,300 for the payer's refund (cold).
  Paying only through \`withdraw\` would save them here and cost each recipient a
  transaction of its own (not done: the AS wants its money in the close, the payer its
  refund; the pull path is only the fallback). An access list naming the payer would
  turn 2,600 into 100 for 2,400 of intrinsic gas: 100 saved (left to the caller).
- **SLOAD** (open: the counter's word, 2,100 cold, and once more warm, 100; close: the
  three or four words, 2,100 each, cold) and the **SSTORE**s that
  delete them (2,900 each, warm) come back partly as the refund (4,800 per word cleared, at
  most a fifth of the gas used: the cap binds on every close here). Unavoidable while the
  channel is kept in storage.
- **STATICCALL (ecrecover)** is 3,000 for the precompile plus the call's overhead (the
  address is warm by EIP-2929); the EIP-712 hashing is in **KECCAK256** (the struct hash
  and the digest; on a group, one more per proof sibling: ${fmt(get(cg, 'KECCAK256'))} gas on the 2^10
  group's close, 10 siblings). Both are what a signed receipt costs.
- **TLOAD/TSTORE (lock)**: the reentrancy lock, three transient-storage accesses at 100 each
  (EIP-1153), the price of refusing every reentry whatever the gas a recipient gets.
- **other opcodes**: the checks of every rule (expiry, epoch, deposit, the signature's
  one encoding, the authority), packing and unpacking the words, ABI decoding, memory.

Two more ways to fewer words, priced and not taken: amounts of 96 bits stored beside the
payee's address (word 1) would leave word 2 zero at an account channel's open, 22,100 less
(any ETH amount fits, not every chain's token supply; the protocol's Balance is u128); and
a registry of payees (an AS registers once, a channel stores a 4-byte index) would make
room for a delegate's address in word 2, about 20,000 less on a delegate's open, for a
cold read (2,100) on every settle and close and a registration message the ink! contract
does not have. The compiler's IR pipeline (\`via_ir = true\`, measured on this contract
2026-12-03) saves about 560 gas on open and 380 on close; it is not used because solcjs
then takes about three times as long to build the contract and its tests.

Prices moved under the original's figures if they were measured before 2021 (this file
does not know when they were): EIP-2929 added 2,100 for a cold storage word and 2,600 for
a cold account, and EIP-3529 cut the refund for clearing a word from 15,000 to 4,800
(capped at a fifth of the gas instead of half), so the same storage written and cleared
costs more today whatever the contract does.
`
// Facts computed here go into the text only through the table, which is checked.
for (const x of itemised) {
  let sum = x.it.intrinsic - x.it.refund
  for (const n of names) sum += get(x, n)
  if (sum !== x.tx.gasUsed) throw new Error(`${x.message} ${x.construction}: items add up to ${sum}, not ${x.tx.gasUsed}`)
  if ([...x.it.items.keys()].some((k) => !names.includes(k))) throw new Error('an item is missing from the table')
}
writeFileSync(outPath, md)
console.log(`wrote ${outPath}`)
