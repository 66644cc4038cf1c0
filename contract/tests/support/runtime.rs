//! ink_sandbox 5.1.1's runtime (`ink_sandbox::create_sandbox!`, copied) with one change:
//! an existential deposit of [`EXISTENTIAL_DEPOSIT`] instead of 1. The macro hard-codes
//! `ConstU128<1>`, under which no payment is ever below the minimum, so the reaped-payer
//! attack could not be shown.
use frame_support::{
    construct_runtime, derive_impl, parameter_types,
    sp_runtime::{testing::H256, traits::Convert, AccountId32, Perbill},
    traits::{ConstBool, ConstU128, ConstU32, ConstU64, Currency, Randomness},
    weights::Weight,
};
use ink_sandbox::Snapshot;

/// The least an account may hold; a new account cannot receive less. Above 1 (so a
/// 1-unit refund to a reaped account is refused) and below a channel's storage deposit
/// (so a reaped payer's own call can still be refunded its storage deposit).
pub(crate) const EXISTENTIAL_DEPOSIT: u128 = 100;

construct_runtime!(
    pub enum SlotpayRuntime {
        System: ink_sandbox::frame_system,
        Balances: ink_sandbox::pallet_balances,
        Timestamp: ink_sandbox::pallet_timestamp,
        Contracts: ink_sandbox::pallet_contracts,
    }
);

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig as frame_system::DefaultConfig)]
impl frame_system::Config for SlotpayRuntime {
    type Block = frame_system::mocking::MockBlockU32<SlotpayRuntime>;
    type Version = ();
    type BlockHashCount = ConstU32<250>;
    type AccountData = ink_sandbox::pallet_balances::AccountData<
        <SlotpayRuntime as ink_sandbox::pallet_balances::Config>::Balance,
    >;
}

impl ink_sandbox::pallet_balances::Config for SlotpayRuntime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type Balance = u128;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type ReserveIdentifier = [u8; 8];
    type FreezeIdentifier = ();
    type MaxLocks = ();
    type MaxReserves = ();
    type MaxFreezes = ();
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
}

impl ink_sandbox::pallet_timestamp::Config for SlotpayRuntime {
    type Moment = u64;
    type OnTimestampSet = ();
    type MinimumPeriod = ConstU64<1>;
    type WeightInfo = ();
}

pub enum SandboxRandomness {}
impl Randomness<H256, u32> for SandboxRandomness {
    fn random(_subject: &[u8]) -> (H256, u32) {
        unreachable!("No randomness")
    }
}

type BalanceOf = <Balances as Currency<AccountId32>>::Balance;
impl Convert<Weight, BalanceOf> for SlotpayRuntime {
    fn convert(w: Weight) -> BalanceOf {
        w.ref_time().into()
    }
}

parameter_types! {
    pub SandboxSchedule: ink_sandbox::pallet_contracts::Schedule<SlotpayRuntime> = {
        <ink_sandbox::pallet_contracts::Schedule<SlotpayRuntime>>::default()
    };
    pub DeletionWeightLimit: Weight = Weight::zero();
    pub DefaultDepositLimit: BalanceOf = 10_000_000;
    pub CodeHashLockupDepositPercent: Perbill = Perbill::from_percent(0);
    pub MaxDelegateDependencies: u32 = 32;
}

impl ink_sandbox::pallet_contracts::Config for SlotpayRuntime {
    type Time = Timestamp;
    type Randomness = SandboxRandomness;
    type Currency = Balances;
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type CallFilter = ();
    type WeightPrice = Self;
    type WeightInfo = ();
    type ChainExtension = ();
    type Schedule = SandboxSchedule;
    type CallStack = [ink_sandbox::pallet_contracts::Frame<Self>; 5];
    type DepositPerByte = ConstU128<1>;
    type DepositPerItem = ConstU128<1>;
    type AddressGenerator = ink_sandbox::pallet_contracts::DefaultAddressGenerator;
    type MaxCodeLen = ConstU32<{ 123 * 1024 }>;
    type MaxStorageKeyLen = ConstU32<128>;
    type UnsafeUnstableInterface = ConstBool<false>;
    type UploadOrigin = frame_system::EnsureSigned<Self::AccountId>;
    type InstantiateOrigin = frame_system::EnsureSigned<Self::AccountId>;
    type MaxDebugBufferLen = ConstU32<{ 2 * 1024 * 1024 }>;
    type Migrations = ();
    type DefaultDepositLimit = DefaultDepositLimit;
    type Debug = ();
    type CodeHashLockupDepositPercent = CodeHashLockupDepositPercent;
    type MaxDelegateDependencies = MaxDelegateDependencies;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Environment = ();
    type Xcm = ();
    type ApiVersion = ();
}

const INITIAL_BALANCE: u128 = 1_000_000_000_000_000;
const DEFAULT_ACCOUNT: AccountId32 = AccountId32::new([1u8; 32]);

pub(crate) struct SlotpaySandbox {
    ext: ink_sandbox::TestExternalities,
}

impl Default for SlotpaySandbox {
    fn default() -> Self {
        let ext = ink_sandbox::BlockBuilder::<SlotpayRuntime>::new_ext(vec![(
            DEFAULT_ACCOUNT,
            INITIAL_BALANCE,
        )]);
        Self { ext }
    }
}

impl ink_sandbox::Sandbox for SlotpaySandbox {
    type Runtime = SlotpayRuntime;

    fn execute_with<T>(&mut self, execute: impl FnOnce() -> T) -> T {
        self.ext.execute_with(execute)
    }

    fn dry_run<T>(&mut self, action: impl FnOnce(&mut Self) -> T) -> T {
        // Back up the backend, run the action, then restore it.
        let backend_backup = self.ext.as_backend();
        let result = action(self);
        self.ext.commit_all().expect("Failed to commit changes");
        self.ext.backend = backend_backup;
        result
    }

    fn register_extension<E: ::core::any::Any + ink_sandbox::Extension>(&mut self, ext: E) {
        self.ext.register_extension(ext);
    }

    fn initialize_block(
        height: frame_system::pallet_prelude::BlockNumberFor<Self::Runtime>,
        parent_hash: <Self::Runtime as frame_system::Config>::Hash,
    ) {
        ink_sandbox::BlockBuilder::<Self::Runtime>::initialize_block(height, parent_hash)
    }

    fn finalize_block(
        height: frame_system::pallet_prelude::BlockNumberFor<Self::Runtime>,
    ) -> <Self::Runtime as frame_system::Config>::Hash {
        ink_sandbox::BlockBuilder::<Self::Runtime>::finalize_block(height)
    }

    fn default_actor() -> ink_sandbox::AccountIdFor<Self::Runtime> {
        DEFAULT_ACCOUNT
    }

    fn get_metadata() -> ink_sandbox::RuntimeMetadataPrefixed {
        Self::Runtime::metadata()
    }

    fn convert_account_to_origin(
        account: ink_sandbox::AccountIdFor<Self::Runtime>,
    ) -> <<Self::Runtime as frame_system::Config>::RuntimeCall as frame_support::sp_runtime::traits::Dispatchable>::RuntimeOrigin{
        Some(account).into()
    }

    fn take_snapshot(&mut self) -> Snapshot {
        let mut backend = self.ext.as_backend();
        let raw_key_values = backend
            .backend_storage_mut()
            .drain()
            .into_iter()
            .filter(|(_, (_, r))| *r > 0)
            .collect::<Vec<(Vec<u8>, (Vec<u8>, i32))>>();
        let root = backend.root().to_owned();
        Snapshot {
            storage: raw_key_values,
            storage_root: root,
        }
    }

    fn restore_snapshot(&mut self, snapshot: Snapshot) {
        self.ext = ink_sandbox::TestExternalities::from_raw_snapshot(
            snapshot.storage,
            snapshot.storage_root,
            Default::default(),
        );
    }
}
