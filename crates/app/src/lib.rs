//! Use-cases of the platform as plain async functions over store, objects and ml.
