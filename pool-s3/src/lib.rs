pub use pool_core;
