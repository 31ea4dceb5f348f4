pub use seethink_models as models;
